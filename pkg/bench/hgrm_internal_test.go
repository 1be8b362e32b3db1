package bench

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// knownHistogram holds one latency of each whole number of microseconds
// from 1 to 10000, in nanoseconds: p50 5ms, p90 9ms, max 10ms.
func knownHistogram() *hdrhistogram.Histogram {
	h := hdrhistogram.New(histLowest, histHighest, histDigits)
	for us := int64(1); us <= 10000; us++ {
		h.RecordValue(us * int64(time.Microsecond))
	}
	return h
}

// TestWriteHgrmGolden compares the .hgrm of a known histogram with
// testdata/known.hgrm (regenerate with ECHOCTL_UPDATE_HGRM=1).
func TestWriteHgrmGolden(t *testing.T) {
	var b bytes.Buffer
	if err := writeHgrm(&b, knownHistogram()); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/known.hgrm"
	if os.Getenv("ECHOCTL_UPDATE_HGRM") == "1" {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("hgrm differs from %s:\n%s", golden, b.String())
	}
}

// hgrmLine is a line of a .hgrm file, parsed back.
type hgrmLine struct {
	ms, fraction, inverted float64
	count                  int64
}

// parseHgrm reads a .hgrm as HdrHistogram's plotter does: whitespace
// separated columns, lines starting with # or a word skipped; and the
// footer's mean, max and total count.
func parseHgrm(t *testing.T, s string) (lines []hgrmLine, footer map[string]float64) {
	t.Helper()
	footer = map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#[") {
			for _, kv := range strings.Split(strings.Trim(text, "#[]"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					t.Fatalf("footer %q: %v", text, err)
				}
				footer[strings.TrimSpace(k)] = f
			}
			continue
		}
		f := strings.Fields(text)
		if len(f) == 0 || f[0] == "Value" {
			continue
		}
		var l hgrmLine
		var err error
		if l.ms, err = strconv.ParseFloat(f[0], 64); err != nil {
			t.Fatalf("line %q: %v", text, err)
		}
		l.fraction, _ = strconv.ParseFloat(f[1], 64)
		l.count, _ = strconv.ParseInt(f[2], 10, 64)
		l.inverted = math.Inf(1)
		if len(f) == 4 {
			l.inverted, _ = strconv.ParseFloat(f[3], 64)
		}
		lines = append(lines, l)
	}
	return lines, footer
}

// TestWriteHgrmParsesBack reads the .hgrm of the known histogram back:
// its percentiles are those of the histogram, in milliseconds, and the
// footer's figures are the histogram's.
func TestWriteHgrmParsesBack(t *testing.T) {
	h := knownHistogram()
	var b bytes.Buffer
	if err := writeHgrm(&b, h); err != nil {
		t.Fatal(err)
	}
	lines, footer := parseHgrm(t, b.String())
	if len(lines) < 20 {
		t.Fatalf("%d lines", len(lines))
	}
	prev := hgrmLine{}
	for _, l := range lines {
		if l.ms < prev.ms || l.fraction < prev.fraction || l.count < prev.count {
			t.Errorf("not increasing: %+v after %+v", l, prev)
		}
		// The known values are 1µs, 2µs, ... 10000µs: a line's count is
		// how many are at or below its value, it covers its percentile,
		// and its value is the percentile's within the histogram's three
		// digits.
		if want := min(10000, int64(math.Floor(l.ms*1000+1e-9))); l.count != want {
			t.Errorf("at %v: count %d, want %d at or below %v ms", l.fraction, l.count, want, l.ms)
		}
		if float64(l.count)/10000 < l.fraction-1e-9 {
			t.Errorf("at %v: count %d does not cover it", l.fraction, l.count)
		}
		if want := max(l.fraction*10, 0.001); math.Abs(l.ms-want) > want*0.001+0.001 {
			t.Errorf("at %v: %v ms, want %v", l.fraction, l.ms, want)
		}
		if l.fraction < 1 && math.Abs(l.inverted-1/(1-l.fraction)) > 0.01 {
			t.Errorf("at %v: 1/(1-p) %v", l.fraction, l.inverted)
		}
		prev = l
	}
	last := lines[len(lines)-1]
	if last.fraction != 1 || last.count != 10000 || !math.IsInf(last.inverted, 1) || math.Abs(last.ms-10) > 0.01 {
		t.Errorf("last line %+v, want 100%% of 10000 at 10ms", last)
	}
	if footer["Total count"] != 10000 || math.Abs(footer["Mean"]-5.0005) > 0.005 || math.Abs(footer["Max"]-10) > 0.01 ||
		footer["SubBuckets"] != 2048 {
		t.Errorf("footer %v", footer)
	}
	for _, p := range []float64{0.5, 0.9} {
		found := false
		for _, l := range lines {
			found = found || (l.fraction == p && math.Abs(l.ms-p*10) < 0.01)
		}
		if !found {
			t.Errorf("no line at %v with %v ms", p, p*10)
		}
	}
}

// TestPercentileCurve checks the Result's curve against the .hgrm lines:
// the same points, in microseconds.
func TestPercentileCurve(t *testing.T) {
	h := knownHistogram()
	var b bytes.Buffer
	if err := writeHgrm(&b, h); err != nil {
		t.Fatal(err)
	}
	lines, _ := parseHgrm(t, b.String())
	curve := percentileCurve(h)
	if len(curve) != len(lines) {
		t.Fatalf("%d points, %d lines", len(curve), len(lines))
	}
	for i, p := range curve {
		if math.Abs(p.Latency/1000-lines[i].ms) > 1e-6 || math.Abs(p.Percentile/100-lines[i].fraction) > 1e-9 || p.Count != lines[i].count {
			t.Errorf("point %d %+v, line %+v", i, p, lines[i])
		}
	}
	if percentileCurve(hdrhistogram.New(histLowest, histHighest, histDigits)) != nil {
		t.Error("a curve for no latency")
	}
	if err := (&Result{}).WriteHgrm(&b); err == nil {
		t.Error("WriteHgrm without a histogram: no error")
	}
}

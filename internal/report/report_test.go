package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/report"
	"github.com/echoctl/echoctl/internal/testtool"
	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

// runs runs two short benches against a loopback server, with different
// connection counts, for a page that compares them.
func runs(t *testing.T) []report.Run {
	t.Helper()
	srv := echotest.NewServer(t, nil)
	var out []report.Run
	for _, conns := range []int{1, 4} {
		res, err := bench.Run(context.Background(), bench.Config{Addr: srv.Addr, Conns: conns, Warmup: 500 * time.Millisecond, Duration: 2200 * time.Millisecond})
		if err != nil {
			t.Fatalf("bench: %v", err)
		}
		out = append(out, report.Run{Name: "conns " + strconv.Itoa(conns), Result: res})
	}
	return out
}

// pageData reads back the JSON the page draws from.
func pageData(t *testing.T, html string) map[string]any {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="report-data">(.*?)</script>`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal("no report-data in the page")
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(m[1]), &d); err != nil {
		t.Fatalf("report-data: %v", err)
	}
	return d
}

func TestWritePage(t *testing.T) {
	rs := runs(t)
	rs[1].Name = `<b>"x"</b>`
	var b bytes.Buffer
	if err := report.WritePage(&b, report.Page{Title: "t & <t>", Sections: []report.Section{{Title: "both", Runs: rs}}}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"<title>t &amp; &lt;t&gt;</title>", "&lt;b&gt;&#34;x&#34;&lt;/b&gt;", "messages/s", "Dygraph"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page has no %q", want)
		}
	}
	// Self-contained: nothing is loaded from anywhere.
	for _, bad := range []string{"<script src", "<link", "sourceMappingURL", "http://", "https://cdn"} {
		if strings.Contains(html, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
	d := pageData(t, html)
	series := d["sections"].([]any)[0].(map[string]any)["series"].([]any)
	if len(series) != 2 {
		t.Fatalf("%d series", len(series))
	}
	for _, s := range series {
		s := s.(map[string]any)
		if n := len(s["seconds"].([]any)); n != 3 {
			t.Errorf("%v: %d seconds, want 3", s["name"], n)
		}
		if n := len(s["curve"].([]any)); n < 5 {
			t.Errorf("%v: %d points on the curve", s["name"], n)
		}
	}
}

func TestReadRun(t *testing.T) {
	dir := t.TempDir()
	res := &bench.Result{Mode: bench.ModePingPong, Addr: "127.0.0.1:1", Seconds: []bench.Second{{Second: 1, Messages: 5}}}
	one, _ := json.MarshalIndent(res, "", "  ")
	labelled := *res
	labelled.Label = "mine"
	two, _ := json.Marshal(&labelled)
	sec, _ := json.Marshal(res.Seconds[0])
	files := map[string]string{
		"a.json":      string(one),
		"b.json":      string(two),
		"stream.json": string(sec) + "\n" + string(sec) + "\n" + string(one) + "\n",
		"bad.json":    "{not json",
		"other.json":  `{"hello": 1}`,
		"mode.json":   `{"mode": "foo"}`,
		"empty.json":  "",
		"twice.json":  string(one) + "\n" + string(two) + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		file, name, err string
	}{
		{"a.json", "a", ""},
		{"b.json", "mine", ""},
		{"stream.json", "stream", ""},
		{"bad.json", "", "not a JSON result"},
		{"other.json", "", "not a JSON result"},
		{"mode.json", "", "not a JSON result"},
		{"empty.json", "", "not a JSON result"},
		{"missing.json", "", "no such file"},
		{"twice.json", "", "holds 2 bench results, not one"},
	} {
		r, err := report.ReadRun(filepath.Join(dir, tt.file))
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.file, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.file, err)
		case r.Name != tt.name || len(r.Result.Seconds) != 1:
			t.Errorf("%s: %q, %+v", tt.file, r.Name, r.Result)
		}
	}
}

// TestPageInChromium opens a page of two runs in headless Chromium: it
// loads with no console error, every chart is drawn with points, and a
// screenshot is not blank.
func TestPageInChromium(t *testing.T) {
	chromium := testtool.Need(t, "chromium", "the report page in a real browser")
	rs := runs(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	p := report.Page{Title: "two runs", Sections: []report.Section{{Title: "pingpong", Runs: rs}, {Title: "one", Runs: rs[:1]}}}
	if err := report.WriteFile(page, p); err != nil {
		t.Fatal(err)
	}
	checkInChromium(t, chromium, page, 8)
}

// checkInChromium loads page in headless Chromium and checks that it drew
// charts charts with points and no error, and takes a screenshot.
func checkInChromium(t *testing.T, chromium, page string, charts int) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		base := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--virtual-time-budget=5000"}
		cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
		}
		return out.String(), errb.String()
	}
	dom, stderr := run("--dump-dom", "file://"+page)
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("console: %s", line)
		}
	}
	if strings.Contains(dom, "data-error=") {
		t.Errorf("the page's script failed: %s", regexp.MustCompile(`data-error="[^"]*"`).FindString(dom))
	}
	if m := regexp.MustCompile(`<body[^>]*data-charts="(\d+)"`).FindStringSubmatch(dom); m == nil || m[1] != strconv.Itoa(charts) {
		t.Errorf("charts drawn: %v, want %d", m, charts)
	}
	points := regexp.MustCompile(`data-chart="(\w+)"[^>]*data-points="(\d+)"|data-points="(\d+)"[^>]*data-chart="(\w+)"`).FindAllStringSubmatch(dom, -1)
	if len(points) != charts {
		t.Errorf("%d charts with data-points, want %d", len(points), charts)
	}
	for _, m := range points {
		if m[2] == "0" || m[3] == "0" {
			t.Errorf("a chart drew no point: %s", m[0])
		}
	}
	shot := filepath.Join(dir, "page.png")
	run("--screenshot="+shot, "--window-size=1200,900", "file://"+page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colours := map[uint32]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 3 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if len(colours) < 10 {
		t.Errorf("the screenshot is blank: %d colours", len(colours))
	}
}

// TestPageRowsOfModes: a udp:// run's row says what became of its
// datagrams (the page said nothing of a 10% loss), and a section mixing
// modes names its throughput for what each counts, not "messages/s".
func TestPageRowsOfModes(t *testing.T) {
	udp := &bench.Result{Mode: bench.ModePingPong, Addr: "udp://127.0.0.1:7", UDP: &bench.UDPStats{Sent: 1000, Received: 900, Lost: 100, LossPercent: 10, Reordered: 7, Duplicates: 3, Jitter: 12.5}}
	stream := &bench.Result{Mode: bench.ModeStream, Addr: "127.0.0.1:7"}
	var b bytes.Buffer
	err := report.WritePage(&b, report.Page{Sections: []report.Section{
		{Title: "udp", Runs: []report.Run{{Name: "u", Result: udp}}},
		{Title: "mixed", Runs: []report.Run{{Name: "u", Result: udp}, {Name: "s", Result: stream}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"<th>datagrams</th>", "1000 sent, 100 lost (10.00%), 7 reordered, 3 duplicates, jitter 12.5µs", "operations/s (pingpong messages, stream writes, connrate cycles)"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page has no %q", want)
		}
	}
}

// TestPageRowOfRunInterruptedInWarmup: a run interrupted in its warmup
// says how long the warmup lasted, not only the one asked for.
func TestPageRowOfRunInterruptedInWarmup(t *testing.T) {
	cut := &bench.Result{Mode: bench.ModePingPong, Addr: "127.0.0.1:7", Warmup: 3, WarmupElapsed: 1.03, Duration: 5, Interrupted: true}
	var b bytes.Buffer
	if err := report.WritePage(&b, report.Page{Sections: []report.Section{{Runs: []report.Run{{Name: "cut", Result: cut}}}}}); err != nil {
		t.Fatal(err)
	}
	if want := "1.03s of 3.00s, interrupted"; !strings.Contains(b.String(), want) {
		t.Errorf("the page has no %q", want)
	}
}

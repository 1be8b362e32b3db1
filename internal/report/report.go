// Package report draws echoctl bench results as one self-contained HTML
// page: the runs' settings and figures, their throughput, errors and
// latency each second, and their latency percentile curves, several runs
// on the same axes. The charting library, dygraphs, is embedded and
// inlined, so that the page opens with no network (assets/README.md says
// where it comes from, and why not go-echarts). bench --html, bench report
// and make bench's docs/benchmarks.html all draw through WritePage.
package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/echoctl/echoctl/internal/regfile"
	"github.com/echoctl/echoctl/pkg/bench"
)

var (
	//go:embed assets/dygraph.min.js
	libJS string
	//go:embed assets/dygraph.min.css
	libCSS string
	//go:embed report.js
	pageJS string
	//go:embed page.html
	pageHTML string

	page = template.Must(template.New("page").Parse(pageHTML))
)

// Run is one result, named in the legends and the table.
type Run struct {
	Name   string
	Result *bench.Result
}

// Section is a set of runs drawn on the same axes, under a title (none if
// empty).
type Section struct {
	Title string
	Runs  []Run
}

// Page is a report: a title and its sections.
type Page struct {
	Title    string
	Sections []Section
}

// MaxResultSize bounds what ReadRun reads of a file: 256 MiB. A --json
// result grows by about half a KiB for each second of its run (its
// seconds; --json-stream's has each twice), so a run of a day is under
// 100 MiB; a path to something huge or endless is refused rather than
// filling memory.
const MaxResultSize = 256 << 20

// ReadRun reads a result written by echoctl bench --json, or the output of
// --json-stream, whose last line is the result. The run is named by the
// result's label, or else by the file's name without .json. Only a regular
// file of at most MaxResultSize bytes is read: a FIFO would block the read
// until something wrote to it, and a device (/dev/zero) may never end.
func ReadRun(path string) (Run, error) {
	b, err := regfile.Read(path, MaxResultSize, "a bench result")
	if err != nil {
		return Run{}, fmt.Errorf("report: %s: %w", path, regfile.Cause(err))
	}
	// The last JSON value in the file: the result, after any seconds.
	dec := json.NewDecoder(bytes.NewReader(b))
	var last json.RawMessage
	results := 0
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return Run{}, fmt.Errorf("report: %s: not a JSON result of echoctl bench: %w", path, err)
		}
		var kind struct{ Mode string }
		if json.Unmarshal(v, &kind) == nil && kind.Mode != "" {
			results++ // a result; --json-stream's seconds have no mode
		}
		last = v
	}
	if results > 1 {
		return Run{}, fmt.Errorf("report: %s: holds %d bench results, not one: give each run a file of its own", path, results)
	}
	var res bench.Result
	if last == nil || json.Unmarshal(last, &res) != nil || !slices.Contains(bench.Modes, res.Mode) {
		return Run{}, fmt.Errorf("report: %s: not a JSON result of echoctl bench (bench --json writes one)", path)
	}
	name := res.Label
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), ".json")
	}
	return Run{Name: name, Result: &res}, nil
}

// pageData is what the template fills in.
type pageData struct {
	Title    string
	LibJS    template.JS
	LibCSS   template.CSS
	PageJS   template.JS
	Sections []sectionView
	Data     chartData // the charts' data, as JSON in the page
}

// sectionView is a section's table.
type sectionView struct {
	Title string
	Unit  string
	Rows  []rowView
}

// rowView is a run's line in its section's table.
type rowView struct {
	Name, Mode, Addr, Conns, Size, Pipeline, Chunk, Rate, Warmup, Measured string
	Throughput, MB, P50, P90, P99, P999, Max, Errors                       string
	// Datagrams is what became of a udp:// run's datagrams; "–" otherwise.
	Datagrams string
}

// chartData is what report.js draws.
type chartData struct {
	Sections []sectionData `json:"sections"`
}

type sectionData struct {
	Unit   string       `json:"unit"`
	Series []seriesData `json:"series"`
}

type seriesData struct {
	Name    string        `json:"name"`
	Seconds []secondPoint `json:"seconds"`
	// Curve is [1/(1-p), µs] for each percentile p below 100%: the x a
	// log axis can place.
	Curve [][2]float64 `json:"curve"`
}

type secondPoint struct {
	Second     int     `json:"second"`
	Throughput float64 `json:"throughput"`
	Errors     int64   `json:"errors"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
}

// throughput is the figure a section's runs are compared by: what their
// mode does, or messages per second when their modes differ.
type throughput struct {
	unit   string
	result func(*bench.Result) float64
	second func(bench.Second) float64
}

func throughputOf(runs []Run) throughput {
	mode := bench.Mode("")
	for i, r := range runs {
		if i > 0 && r.Result.Mode != mode {
			mode = ""
			break
		}
		mode = r.Result.Mode
	}
	switch mode {
	case bench.ModeStream:
		return throughput{"MB/s", func(r *bench.Result) float64 { return r.MBPerSec }, func(s bench.Second) float64 { return s.MBPerSec }}
	case bench.ModeConnRate:
		return throughput{"connections/s", func(r *bench.Result) float64 { return r.ConnsPerSec }, func(s bench.Second) float64 { return s.ConnsPerSec }}
	case bench.ModeIdle:
		return throughput{"connections checked/s", func(r *bench.Result) float64 { return r.MessagesPerSec }, func(s bench.Second) float64 { return s.MessagesPerSec }}
	case bench.ModePingPong:
		return throughput{"messages/s", func(r *bench.Result) float64 { return r.MessagesPerSec }, func(s bench.Second) float64 { return s.MessagesPerSec }}
	default: // modes mixed: each its own operation, said in the unit
		return throughput{"operations/s (pingpong messages, stream writes, connrate cycles)", func(r *bench.Result) float64 { return r.MessagesPerSec }, func(s bench.Second) float64 { return s.MessagesPerSec }}
	}
}

// WritePage writes p as one HTML page.
func WritePage(w io.Writer, p Page) error {
	d := pageData{Title: p.Title, LibJS: template.JS(libJS), LibCSS: template.CSS(libCSS), PageJS: template.JS(pageJS)}
	for _, s := range p.Sections {
		tp := throughputOf(s.Runs)
		sv := sectionView{Title: s.Title, Unit: tp.unit}
		sd := sectionData{Unit: tp.unit, Series: []seriesData{}}
		seen := map[string]int{}
		for _, r := range s.Runs {
			name := r.Name
			// dygraphs tells series apart by name.
			if seen[name]++; seen[name] > 1 {
				name = fmt.Sprintf("%s (%d)", name, seen[name])
			}
			sv.Rows = append(sv.Rows, row(name, r.Result, tp))
			sd.Series = append(sd.Series, series(name, r.Result, tp))
		}
		d.Sections = append(d.Sections, sv)
		d.Data.Sections = append(d.Data.Sections, sd)
	}
	var b bytes.Buffer
	if err := page.Execute(&b, d); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// WriteFile writes p to the file path.
func WriteFile(path string, p Page) error {
	var b bytes.Buffer
	if err := WritePage(&b, p); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func row(name string, res *bench.Result, tp throughput) rowView {
	num := func(v int) string {
		if v == 0 {
			return "–"
		}
		return strconv.Itoa(v)
	}
	rate := "–"
	if res.Rate > 0 {
		rate = fmt.Sprintf("%g/s", res.Rate)
	}
	measured := fmt.Sprintf("%.2fs", res.Elapsed)
	warmup := fmt.Sprintf("%.2fs", res.Warmup)
	if res.Interrupted {
		measured += " of " + fmt.Sprintf("%.2fs", res.Duration) + ", interrupted"
		if res.WarmupElapsed < res.Warmup { // in the warmup: what it lasted
			warmup = fmt.Sprintf("%.2fs of %s, interrupted", res.WarmupElapsed, warmup)
		}
	}
	errs := "none"
	if n := res.Errors.Total(); n > 0 {
		errs = strconv.FormatInt(n, 10)
	}
	l := res.Latency
	return rowView{
		Name: name, Mode: string(res.Mode), Addr: res.Addr,
		Conns: num(res.Conns), Size: num(res.Size), Pipeline: num(res.Pipeline), Chunk: num(res.Chunk), Rate: rate,
		Warmup: warmup, Measured: measured,
		Throughput: fmt.Sprintf("%.0f", tp.result(res)), MB: fmt.Sprintf("%.2f", res.MBPerSec),
		P50: micros(l.P50, l.Count), P90: micros(l.P90, l.Count), P99: micros(l.P99, l.Count), P999: micros(l.P999, l.Count), Max: micros(l.Max, l.Count),
		Errors: errs, Datagrams: datagrams(res.UDP),
	}
}

// datagrams says what became of a udp:// run's datagrams, as its table
// does: loss, reordering, duplicates, jitter.
func datagrams(u *bench.UDPStats) string {
	if u == nil {
		return "–"
	}
	return fmt.Sprintf("%d sent, %d lost (%.2f%%), %d reordered, %d duplicates, jitter %.1fµs",
		u.Sent, u.Lost, u.LossPercent, u.Reordered, u.Duplicates, u.Jitter)
}

func micros(us float64, count int64) string {
	if count == 0 {
		return "–"
	}
	return strconv.FormatFloat(us, 'f', 1, 64)
}

func series(name string, res *bench.Result, tp throughput) seriesData {
	sd := seriesData{Name: name, Seconds: []secondPoint{}, Curve: [][2]float64{}}
	for _, s := range res.Seconds {
		sd.Seconds = append(sd.Seconds, secondPoint{Second: s.Second, Throughput: tp.second(s), Errors: s.Errors.Total(), P50: s.Latency.P50, P99: s.Latency.P99})
	}
	for _, p := range res.LatencyCurve {
		if x := 1 / (1 - p.Percentile/100); p.Percentile < 100 && !math.IsInf(x, 0) {
			sd.Curve = append(sd.Curve, [2]float64{x, p.Latency})
		}
	}
	return sd
}

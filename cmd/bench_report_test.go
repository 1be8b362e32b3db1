package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

// timedWriter notes when each line was written.
type timedWriter struct {
	mu    sync.Mutex
	lines []string
	at    []time.Time
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if l != "" {
			w.lines = append(w.lines, l)
			w.at = append(w.at, time.Now())
		}
	}
	return len(p), nil
}

// jsonKeys returns the top-level keys of a JSON object.
func jsonKeys(t *testing.T, s string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v: %.200s", err, s)
	}
	return slices.Sorted(maps.Keys(m))
}

// TestBenchJSONStream: a line per second as each ends, then the result,
// with the keys --json has and the same seconds.
func TestBenchJSONStream(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	cfg := bench.Config{Addr: srv.Addr, Conns: 2, Warmup: 500 * time.Millisecond, Duration: 2500 * time.Millisecond}
	var w timedWriter
	if err := runBench(context.Background(), cfg, benchOutputs{stream: true}, &w, nil); err != nil {
		t.Fatal(err)
	}
	if len(w.lines) != 4 {
		t.Fatalf("%d lines, want 3 seconds and the result:\n%s", len(w.lines), strings.Join(w.lines, ""))
	}
	// Written as it happened: the first second a second and more before
	// the result.
	if gap := w.at[3].Sub(w.at[0]); gap < time.Second {
		t.Errorf("the first second came %v before the result, want it as it ended", gap)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(w.lines[3]), &res); err != nil || len(res.Seconds) != 3 {
		t.Fatalf("result line: %v, %d seconds", err, len(res.Seconds))
	}
	for i, l := range w.lines[:3] {
		var s bench.Second
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatal(err)
		}
		if s != res.Seconds[i] || s.Second != i+1 || s.Messages == 0 || s.Latency.P99 <= 0 {
			t.Errorf("line %d: %+v, the result's second %+v", i+1, s, res.Seconds[i])
		}
	}
	// The same object --json prints.
	var out strings.Builder
	cfg.Duration = 1200 * time.Millisecond
	if err := runBench(context.Background(), cfg, benchOutputs{json: true}, &out, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := jsonKeys(t, w.lines[3]), jsonKeys(t, out.String()); !slices.Equal(got, want) {
		t.Errorf("--json-stream's result has keys %v, --json's %v", got, want)
	}
}

// TestBenchHgrmAndHTML writes both files from one run: the .hgrm counts
// every echo timed, ending at 100%, and the page holds the run.
func TestBenchHgrmAndHTML(t *testing.T) {
	benchIsolate(t)
	srv := echotest.NewServer(t, nil)
	dir := t.TempDir()
	hgrm, html := filepath.Join(dir, "run.hgrm"), filepath.Join(dir, "run.html")
	code, stdout, stderr := benchRun(t, append([]string{"bench", "--addr", srv.Addr, "--json", "--label", "mine", "--hgrm", hgrm, "--html", html}, short...)...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Label != "mine" {
		t.Fatalf("%v, label %q", err, res.Label)
	}
	f, err := os.Open(hgrm)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last []string
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 3 && !strings.HasPrefix(fields[0], "#") && fields[0] != "Value" {
			last, lines = fields, lines+1
		}
	}
	if lines < 10 || last[1] != "1.000000000000" || last[2] != strings.TrimSpace(jsonInt(res.Latency.Count)) {
		t.Errorf("%d lines, last %q; want it at 1.0 with %d echoes", lines, last, res.Latency.Count)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<title>echoctl bench: pingpong against " + srv.Addr, `"name":"mine"`, "new Dygraph("} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page has no %q", want)
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestBenchOutputFileRefused: a file that cannot be created is a usage
// error before any load, and leaves nothing behind.
func TestBenchOutputFileRefused(t *testing.T) {
	benchIsolate(t)
	dir := t.TempDir()
	for _, flag := range []string{"--hgrm", "--html"} {
		start := time.Now()
		code, _, stderr := benchRun(t, "bench", "--addr", "127.0.0.1:1", "--hgrm", filepath.Join(dir, "ok.hgrm"), flag, filepath.Join(dir, "no", "such", "dir"))
		if code != ExitUsage || !strings.Contains(stderr, "invalid "+flag+":") || time.Since(start) > 5*time.Second {
			t.Errorf("%s: exit %d, %q after %v", flag, code, stderr, time.Since(start))
		}
	}
	// "-" is no file: standard output carries the result.
	t.Chdir(dir)
	for _, flag := range []string{"--hgrm", "--html"} {
		code, _, stderr := benchRun(t, "bench", "--addr", "127.0.0.1:1", flag, "-")
		if code != ExitUsage || !strings.Contains(stderr, `invalid `+flag+` "-": standard output is bench's result`) {
			t.Errorf("%s -: exit %d, %q", flag, code, stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestBenchReport(t *testing.T) {
	benchIsolate(t)
	srv := echotest.NewServer(t, nil)
	dir := t.TempDir()
	file := func(name string, args ...string) string {
		t.Helper()
		code, stdout, stderr := benchRun(t, append(append([]string{"bench", "--addr", srv.Addr}, args...), short...)...)
		if code != ExitOK {
			t.Fatalf("bench %v: exit %d: %s", args, code, stderr)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	a := file("one.json", "--json")
	b := file("two.json", "--json-stream", "--conns", "3", "--label", "three conns")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"x": 1}`), 0o644)
	out := filepath.Join(dir, "out.html")
	link := filepath.Join(dir, "link.html")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, f := range []string{a, b} {
		before[f], _ = os.ReadFile(f)
	}

	code, stdout, stderr := benchRun(t, "bench", "report", a, b, "--html", out, "--title", "A & B", "--section", "only one="+a)
	if code != ExitOK || stdout != "" || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<title>A &amp; B</title>", "<h2>only one</h2>", `"name":"one"`, `"name":"three conns"`, `id="percentiles-1"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page has no %q", want)
		}
	}
	// --html - is standard output, and the same page; no file named "-".
	t.Chdir(dir)
	code, stdout, stderr = benchRun(t, "bench", "report", a, b, "--html", "-", "--title", "A & B", "--section", "only one="+a)
	if code != ExitOK || stdout != string(page) || stderr != "" {
		t.Errorf("--html -: exit %d, %d bytes on stdout (want the page's %d), stderr %q", code, len(stdout), len(page), stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "-")); err == nil {
		t.Errorf(`--html - wrote a file named "-"`)
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no html", []string{a}, ExitUsage, "needs --html FILE"},
		{"no files", []string{"--html", out}, ExitUsage, "needs result files"},
		{"not a result", []string{bad, "--html", out}, ExitUsage, "bad.json: not a JSON result of echoctl bench"},
		{"missing", []string{filepath.Join(dir, "none.json"), "--html", out}, ExitUsage, "no such file"},
		{"bad section", []string{"--section", "x", "--html", out}, ExitUsage, `invalid --section "x"`},
		{"section without a title", []string{"--section", "=" + a, "--html", out}, ExitUsage, `invalid --section "=` + a + `": want TITLE=FILE,FILE,..., with a title`},
		{"section without files", []string{"--section", "S=", "--html", out}, ExitUsage, `invalid --section "S=": want TITLE=FILE,FILE,..., with files after the =`},
		{"empty file in a section", []string{"--section", "A=" + a + ",", "--html", out}, ExitUsage, `invalid --section "A=` + a + `,": a file name is empty`},
		{"empty file argument", []string{"", a, "--html", out}, ExitUsage, "a FILE argument is empty"},
		{"html is an input", []string{a, b, "--html", b}, ExitUsage, `invalid --html "` + b + `": it is the result file "` + b + `", an input it would overwrite`},
		{"html is a section's input", []string{a, "--section", "s=" + b, "--html", filepath.Join(dir, ".", "two.json")}, ExitUsage, `it is the result file "` + b + `"`},
		{"html links to an input", []string{a, "--html", link}, ExitUsage, `invalid --html "` + link + `": it is the result file "` + a + `"`},
		{"directory", []string{dir, "--html", out}, ExitUsage, "not a regular file but a directory"},
		{"unwritable", []string{a, "--html", filepath.Join(dir, "no", "x.html")}, ExitNetwork, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := benchRun(t, append([]string{"bench", "report"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.err) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.err)
			}
		})
	}
	for f, want := range before {
		if got, _ := os.ReadFile(f); string(got) != string(want) {
			t.Errorf("%s was overwritten", f)
		}
	}
}

// TestBenchOutputOverwritesInput: bench refuses, before any load, an
// --hgrm or --html that is the other output or a file it reads, however
// the path is spelt, and leaves the file as it was.
func TestBenchOutputOverwritesInput(t *testing.T) {
	benchIsolate(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "echoctl.yaml")
	old := filepath.Join(dir, "old.hgrm")
	link := filepath.Join(dir, "link.html")
	const cfgText, oldText = "addr: 127.0.0.1:1\n", "an earlier run's distribution\n"
	for f, text := range map[string]string{cfg: cfgText, old: oldText} {
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(old, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		err  string
	}{
		{"html links to hgrm", []string{"--hgrm", old, "--html", link}, `invalid --html "` + link + `": --hgrm writes that file too`},
		{"html is the config file", []string{"--config", cfg, "--html", cfg}, `invalid --html "` + cfg + `": it is the config file, an input it would overwrite`},
		{"hgrm is the config file, spelt apart", []string{"--config", cfg, "--hgrm", filepath.Join(dir, "x", "..", "echoctl.yaml")}, "it is the config file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := benchRun(t, append([]string{"bench", "--addr", "127.0.0.1:1"}, tt.args...)...)
			if code != ExitUsage || stdout != "" || !strings.HasPrefix(stderr, "echoctl: ") || !strings.Contains(stderr, tt.err) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, ExitUsage, tt.err)
			}
			if d := time.Since(start); d > 5*time.Second { // a run lasts 11s
				t.Errorf("refused after %v, want before any load", d)
			}
			for f, want := range map[string]string{cfg: cfgText, old: oldText} {
				if got, _ := os.ReadFile(f); string(got) != want {
					t.Errorf("%s now holds %.40q", f, got)
				}
			}
		})
	}
}

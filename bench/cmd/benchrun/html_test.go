package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// buildEchoctl builds the echoctl of this repository, which draws the page.
func buildEchoctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "echoctl")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build echoctl: %v\n%s", err, out)
	}
	return bin
}

// fakeRun is a counted run whose raw output is a bench --json result
// with msgs messages a second over three seconds.
func fakeRun(serverID, modeID string, msgs float64) *runResult {
	raw := map[string]any{
		"mode": "pingpong", "addr": "127.0.0.1:21001", "conns": 50, "size": 128, "pipeline": 1,
		"warmup_s": 1, "duration_s": 3, "elapsed_s": 3, "messages": int(3 * msgs), "messages_per_s": msgs,
		"latency_us":    map[string]any{"count": int(3 * msgs), "p50": 20, "p99": 50},
		"errors":        map[string]int{},
		"latency_curve": []map[string]any{{"percentile": 0, "us": 10, "count": 1}, {"percentile": 50, "us": 20, "count": 10}, {"percentile": 99, "us": 50, "count": 99}, {"percentile": 100, "us": 90, "count": 100}},
		"seconds": []map[string]any{
			{"second": 1, "elapsed_s": 1, "messages_per_s": msgs, "latency_us": map[string]any{"p50": 20, "p99": 50}},
			{"second": 2, "elapsed_s": 1, "messages_per_s": msgs, "latency_us": map[string]any{"p50": 21, "p99": 51}},
			{"second": 3, "elapsed_s": 1, "messages_per_s": msgs, "latency_us": map[string]any{"p50": 22, "p99": 52}},
		},
	}
	b, _ := json.Marshal(raw)
	var br benchResult
	json.Unmarshal(b, &br)
	br.raw = b
	return &runResult{Server: serverID, Mode: modeID, Result: &br}
}

// TestWriteHTML draws a small fake result set: a section a mode with a
// counted run, each server's best round named by the server, and the
// Markdown page links the HTML one.
func TestWriteHTML(t *testing.T) {
	o := &options{echoctl: buildEchoctl(t), html: filepath.Join(t.TempDir(), "benchmarks.html"), command: "make bench",
		servers: "echoctl,gnet,socat", only: "pp128-c50,pp128-c1,stream-c1", rounds: 2, warmup: time.Second, duration: 3 * time.Second}
	e := &env{socat: "socat", pinned: true, pinNote: "pinned"}
	servers := selectServers(o, e)
	modes := selectModes(o)
	if len(servers) != 3 || len(modes) != 3 {
		t.Fatalf("%d servers, %d modes", len(servers), len(modes))
	}
	failed := fakeRun("socat", "pp128-c50", 1e9)
	failed.Failed = "3 errors"
	runs := []*runResult{
		fakeRun("echoctl", "pp128-c50", 1000), fakeRun("echoctl", "pp128-c50", 1500), fakeRun("gnet", "pp128-c50", 1200),
		failed,
		fakeRun("echoctl", "pp128-c1", 700),
	}
	if err := writeHTML(context.Background(), o, servers, modes, runs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.html)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if got := regexp.MustCompile(`<h2>([^<]*)</h2>`).FindAllStringSubmatch(page, -1); len(got) != 2 || got[0][1] != modes[0].title || got[1][1] != modes[1].title {
		t.Errorf("sections %q, want the two modes with a counted run", got)
	}
	m := regexp.MustCompile(`(?s)<script type="application/json" id="report-data">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no chart data in the page")
	}
	var data struct {
		Sections []struct {
			Series []struct {
				Name    string `json:"name"`
				Seconds []struct {
					Throughput float64 `json:"throughput"`
				} `json:"seconds"`
			} `json:"series"`
		} `json:"sections"`
	}
	if err := json.Unmarshal([]byte(m[1]), &data); err != nil {
		t.Fatal(err)
	}
	// The modes come in the page's order: pp128-c1, then pp128-c50.
	c50 := data.Sections[1]
	var names []string
	for _, s := range c50.Series {
		names = append(names, s.Name)
	}
	if want := servers[0].name + "|" + servers[1].name; strings.Join(names, "|") != want {
		t.Errorf("pp128-c50's series %q: want echoctl and gnet, not socat's failed run", names)
	}
	if got := c50.Series[0].Seconds[0].Throughput; got != 1500 {
		t.Errorf("echoctl's throughput %v, want its best round's 1500", got)
	}

	if md := report(o, e, servers, modes, runs); strings.Contains(md, "benchmarks.html") {
		t.Error("the Markdown page links an HTML page that was not written")
	}
	e.charts = filepath.Base(o.html)
	if md := report(o, e, servers, modes, runs); !strings.Contains(md, "[benchmarks.html](benchmarks.html)") {
		t.Error("the Markdown page does not link the HTML one")
	}
}

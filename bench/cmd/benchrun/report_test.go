package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func result(msgs, p50, cpu float64) *benchResult {
	b := &benchResult{Mode: "pingpong", MessagesPerSec: msgs}
	b.Latency.P50, b.Latency.P99 = p50, 2*p50
	b.Server = &serverStats{CPUPerMessage: cpu}
	return b
}

func TestBestOfRounds(t *testing.T) {
	runs := []*runResult{
		{Server: "echoctl", Mode: "pp128-c50", Result: result(100, 30, 5)},
		{Server: "echoctl", Mode: "pp128-c50", Result: result(120, 40, 6)},
		{Server: "echoctl", Mode: "pp128-c50", Result: result(500, 1, 1), Failed: "3 errors"},
		{Server: "gnet", Mode: "pp128-c50", Result: result(110, 35, 4)},
	}
	idx := index(runs)
	for _, tt := range []struct {
		f    figure
		want float64
	}{{figMsgs, 120}, {figP50, 30}, {figCPU, 5}} {
		if got, ok := idx.best("pp128-c50", "echoctl", tt.f); !ok || got != tt.want {
			t.Errorf("best %s = %v, %v; want %v (failed runs left out)", tt.f.name, got, ok, tt.want)
		}
	}
	if _, ok := idx.best("pp128-c50", "socat", figMsgs); ok {
		t.Error("best of a server with no run: found")
	}
}

func TestTargets(t *testing.T) {
	runs := []*runResult{
		{Server: "echoctl", Mode: "pp128-c50", Result: result(120, 30, 5)},
		{Server: "gnet", Mode: "pp128-c50", Result: result(100, 35, 4)},
		{Server: "asyncio", Mode: "pp128-c50", Result: result(40, 35, 4)},
		// The control: echoctl again, 1.2× slower than echoctl, at the same CPU.
		{Server: againID, Mode: "pp128-c50", Result: result(100, 30, 5)},
	}
	servers := []*server{{id: "echoctl"}, {id: "gnet"}, {id: "asyncio"}, {id: againID}}
	got := map[string]target{}
	for _, tg := range targets(index(runs), servers, map[string]bool{"pp128-c50": true, "pp128-c1": true}, rounds(runs)) {
		got[tg.text] = tg
	}
	check := func(text, met, measured, control string) {
		t.Helper()
		tg, ok := got[text]
		if !ok {
			t.Fatalf("no target %q", text)
		}
		if tg.metCell() != met || !strings.HasPrefix(tg.measured, measured) || tg.control != control {
			t.Errorf("%s: %q, %q, control %q; want %q, %q…, %q", text, tg.metCell(), tg.measured, tg.control, met, measured, control)
		}
	}
	// 1.20× gnet is no further from 1.0 than echoctl is from itself.
	check("pingpong 128 B, 50 conn.: throughput ≥ 1.0× gnet", "**yes** (within noise)", "1.20×", "1.20×")
	check("pingpong 128 B, 50 conn.: throughput ≥ 4× asyncio (quiet)", "no", "3.00×", "1.20×")
	check("server CPU per message, pingpong 128 B, 50 conn.: ≤ 1.1× gnet", "no", "1.25×", "1.00×")
	check("pingpong 128 B, 1 conn.: throughput ≥ 1.0× gnet", "n/a", "no valid run", "–")
}

func TestIdleTargets(t *testing.T) {
	idle := func(server string, perConn float64) *runResult {
		return &runResult{Server: server, Mode: idleID, Result: &benchResult{Mode: "idle", Server: &serverStats{BytesPerConn: perConn}}}
	}
	runs := []*runResult{idle("echoctl", 700), idle("echoctl", 450), idle("gnet", 520), idle(unixID, 640)}
	servers := []*server{{id: "echoctl"}, {id: "gnet"}, {id: unixID}}
	got := map[string]target{}
	for _, tg := range targets(index(runs), servers, map[string]bool{idleID: true}, rounds(runs)) {
		got[tg.text] = tg
	}
	for _, tt := range []struct{ text, met, measured string }{
		{"idle, 10,000 conn.: ≤ 3 KB (3000 B) per connection", "**yes**", "450 B (gnet 520 B)"},
		{"idle, 10,000 conn.: ≤ 600 B per connection (issue 15)", "**yes**", "450 B (gnet 520 B)"},
		{"idle, 10,000 conn. over a Unix socket: ≤ 600 B per connection", "no", "640 B (gnet 520 B)"},
		{"idle, 10,000 conn., --idle-timeout 2m --write-timeout 30s: ≤ 600 B per connection", "n/a", timeoutsID + " not run"},
	} {
		tg, ok := got[tt.text]
		if !ok {
			t.Errorf("no target %q", tt.text)
			continue
		}
		if tg.metCell() != tt.met || tg.measured != tt.measured {
			t.Errorf("%s: %q, %q; want %q, %q", tt.text, tg.metCell(), tg.measured, tt.met, tt.measured)
		}
	}
}

func TestTally(t *testing.T) {
	ts := []target{{outcome: met}, {outcome: met, withinNoise: true}, {outcome: missed, withinNoise: true}, {outcome: missed}, {outcome: missed}, {}}
	want := "1 of 6 targets met by more than the noise, 1 met and 1 missed within it, 2 missed by more than the noise, 1 not measured"
	if got := tally(ts); got != want {
		t.Errorf("tally = %q\nwant     %q", got, want)
	}
}

func TestReportSkipsAndFailures(t *testing.T) {
	o := &options{rounds: 1, warmup: time.Second, duration: 3 * time.Second, idleWarmup: 3 * time.Second, idleDuration: 2 * time.Second, command: "make bench"}
	e := &env{pinned: true, pinNote: "pinned", gnetVersion: "v2.9.7"}
	servers := []*server{
		{id: "echoctl", name: "echoctl", argv: func(int) []string { return []string{"echoctl", "serve"} }},
		{id: "socat", name: "socat", argv: func(int) []string { return []string{"socat"} }, skip: map[string]string{"pp128-c50": "too slow"}},
		{id: "elsewhere", name: "only-elsewhere", argv: func(int) []string { return []string{"x"} }, only: map[string]bool{"pp128-c1": true}},
	}
	modes := selectModes(&options{only: "pp128-c50", warmup: time.Second, duration: 3 * time.Second})
	runs := []*runResult{
		{Server: "echoctl", Mode: "pp128-c50", Round: 1, Failed: "exit 1: boom | bang"},
	}
	page := report(o, e, servers, modes, runs)
	for _, want := range []string{"skipped: too slow", "pp128-c50, echoctl, round 1: exit 1: boom \\| bang", "taskset -c 1 echoctl bench --addr 127.0.0.1:0 --json --warmup 1s --duration 3s --mode pingpong --size 128 --conns 50 --server-pid PID", "gnet's ~532 bytes"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "| only-elsewhere |") {
		t.Errorf("a server that runs only in other modes has a row:\n%s", page)
	}
}

func TestWithinNoise(t *testing.T) {
	for _, tt := range []struct {
		r, want, control float64
		within           bool
	}{
		{0.95, 1.0, 1.10, true},  // 5% short, the control 10% off
		{0.85, 1.0, 1.10, false}, // 15% short
		{1.15, 1.1, 0.90, true},  // CPU: 4.5% over, the control 11% off (1/0.9)
		{1.05, 1.0, 1.00, false}, // a control that agrees leaves no doubt
		{1.05, 1.0, 0.96, false}, // met by more than the noise
		{3.00, 4.0, 1.30, false}, // 33% short of 4×
	} {
		if got := withinNoise(tt.r, tt.want, tt.control); got != tt.within {
			t.Errorf("withinNoise(%v, %v, %v) = %v, want %v", tt.r, tt.want, tt.control, got, tt.within)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{fmtCount(1234567), "1 234 567"},
		{fmtCount(999), "999"},
		{fmtRatio(1.234), "1.23×"},
		{fmtRatio(94.4), "94×"},
		{fmtMicros(532), "532 µs"},
		{fmtMicros(1500), "1.50 ms"},
		{fmtFloat(6.712), "6.71"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestAsyncioCeiling(t *testing.T) {
	echoctl := result(80000, 500, 11)
	echoctl.Elapsed, echoctl.Messages, echoctl.LoadCPUPercent = 3, 240000, 99
	echoctl.Server.CPU, echoctl.Server.SystemCPU = 2.64, 2.52 // 10.5 µs of kernel per message
	asyncio := result(43000, 900, 23)
	asyncio.Elapsed = 3
	asyncio.Server.CPU = 2.94
	runs := []*runResult{
		{Server: "echoctl", Mode: "pp128-c50", Result: echoctl},
		{Server: "asyncio", Mode: "pp128-c50", Result: asyncio},
	}
	idx := index(runs)
	got := asyncioCeilings(idx)
	if len(got) != 1 {
		t.Fatalf("got %d ceilings, want 1 (pp128-c1000 has no runs)", len(got))
	}
	c := got[0]
	want := 1e6 / 10.5 / 43000
	if c.conns != "50" || math.Abs(c.ratio-want) > 1e-9 || math.Abs(c.asyncioBusy-98) > 1e-9 || math.Abs(c.kernelUs-10.5) > 1e-9 {
		t.Errorf("ceiling = %+v, want ratio %.3f, asyncio busy 98%%, kernel 10.5 µs", c, want)
	}
	servers := []*server{{id: "echoctl"}, {id: "asyncio"}}
	for _, tg := range targets(idx, servers, map[string]bool{"pp128-c50": true}, rounds(runs)) {
		if tg.text == "pingpong 128 B, 50 conn.: throughput ≥ 4× asyncio (quiet)" && !strings.Contains(tg.measured, "ceiling on this machine 2.21×") {
			t.Errorf("target says %q, want the ceiling 2.21×", tg.measured)
		}
	}
}

func TestTargetRounds(t *testing.T) {
	runs := []*runResult{
		{Server: "echoctl", Mode: "pp128-c50", Round: 2, Result: result(90, 30, 5)},
		{Server: "gnet", Mode: "pp128-c50", Round: 2, Result: result(100, 35, 4)},
		{Server: "echoctl", Mode: "pp128-c50", Round: 1, Result: result(120, 30, 5)},
		{Server: "gnet", Mode: "pp128-c50", Round: 1, Result: result(100, 35, 4)},
		{Server: "echoctl", Mode: "pp128-c50", Round: 3, Result: result(130, 30, 5)}, // gnet's round 3 failed
		{Server: "gnet", Mode: "pp128-c50", Round: 3, Result: result(10, 35, 4), Failed: "errors"},
	}
	servers := []*server{{id: "echoctl"}, {id: "gnet"}}
	for _, tg := range targets(index(runs), servers, map[string]bool{"pp128-c50": true}, rounds(runs)) {
		if tg.text == "pingpong 128 B, 50 conn.: throughput ≥ 1.0× gnet" {
			if tg.rounds != "1.20×, 0.90×" || tg.metCell() != "**yes**" {
				t.Errorf("rounds %q, met %q; want \"1.20×, 0.90×\" (round order, failed runs left out), **yes** (best of rounds)", tg.rounds, tg.metCell())
			}
			return
		}
	}
	t.Fatal("no pingpong 50 target")
}

// TestSkipped: a server sits out the modes in skip, with its reason (a
// row that says so), and every mode outside only, without a row.
func TestSkipped(t *testing.T) {
	s := &server{skip: map[string]string{"idle-c10000": "too many"}, only: map[string]bool{"pp128-c1": true, "idle-c10000": true}}
	all := &server{skip: map[string]string{"idle-c10000": "too many"}}
	tests := []struct {
		srv        *server
		mode       string
		wantReason string
		wantSkip   bool
	}{
		{s, "pp128-c1", "", false},
		{s, "pp128-c50", "", true},
		{s, "idle-c10000", "too many", true},
		{all, "pp128-c50", "", false},
		{all, "idle-c10000", "too many", true},
	}
	for _, tt := range tests {
		if reason, skip := tt.srv.skipped(tt.mode); reason != tt.wantReason || skip != tt.wantSkip {
			t.Errorf("skipped(%q) = %q, %v; want %q, %v", tt.mode, reason, skip, tt.wantReason, tt.wantSkip)
		}
	}
}

func TestConnrateParts(t *testing.T) {
	cycle := func(conns, cpu float64) *benchResult {
		b := &benchResult{Mode: "connrate", ConnsPerSec: conns}
		b.Server = &serverStats{CPUPerMessage: cpu}
		return b
	}
	runs := []*runResult{
		{Server: "echoctl", Mode: "connrate-c8", Result: cycle(9000, 60)},
		{Server: "gnet", Mode: "connrate-c8", Result: cycle(10000, 50)},
		{Server: "echoctl", Mode: connrateOneID, Result: cycle(12000, 40)},
		{Server: "gnet", Mode: connrateOneID, Result: cycle(12000, 40)},
	}
	servers := []*server{{id: "echoctl"}, {id: "gnet"}}
	var cpu target
	for _, tg := range targets(index(runs), servers, map[string]bool{"connrate-c8": true, connrateOneID: true}, rounds(runs)) {
		if strings.HasPrefix(tg.text, "server CPU per connrate cycle") {
			cpu = tg
		}
	}
	if want := "1.20× (echoctl 60.0, gnet 50.0 server CPU µs/cycle); the message in one write: 1.00× (see below)"; cpu.measured != want {
		t.Errorf("connrate CPU target measured %q, want %q", cpu.measured, want)
	}
	rows := connrateParts(index(runs))
	if len(rows) != 2 || rows[0].cpu != [2]float64{60, 50} || rows[1].conns != [2]float64{12000, 12000} {
		t.Errorf("rows = %+v", rows)
	}
	// Without the one-write mode there is nothing to compare.
	if rows := connrateParts(index(runs[:2])); rows != nil {
		t.Errorf("rows of one mode = %+v, want none", rows)
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"echoctl", "bench", "--addr", "127.0.0.1:0", "--part", "This is it.", "--part", "it's", "--part", ""})
	want := `echoctl bench --addr 127.0.0.1:0 --part 'This is it.' --part 'it'\''s' --part ''`
	if got != want {
		t.Errorf("shellJoin = %s\nwant       %s", got, want)
	}
}

// TestBenchArgsOneAddr: each server is loaded at one address, its own
// (echoctl bench refuses --addr twice, which left the TLS and Unix socket
// rows empty until the address became the server's target).
func TestBenchArgsOneAddr(t *testing.T) {
	o := &options{echoctl: "echoctl", python: "python3", asyncio: "a.py", warmup: time.Second, duration: time.Second}
	e := &env{python: "python3", socat: "socat"}
	want := map[string]string{tlsID: "tls://127.0.0.1:7", tlsResumeID: "tls://127.0.0.1:7", udpID: "udp://127.0.0.1:7", "echoctl": "127.0.0.1:7"}
	for _, s := range selectServers(o, e) {
		for _, m := range selectModes(o) {
			args := m.benchArgs("echoctl", s, 7)
			var addrs []string
			for i, a := range args {
				if a == "--addr" && i+1 < len(args) {
					addrs = append(addrs, args[i+1])
				}
			}
			if len(addrs) != 1 {
				t.Fatalf("%s, %s: --addr %q, want one", s.id, m.id, addrs)
			}
			if w, ok := want[s.id]; ok && addrs[0] != w {
				t.Errorf("%s, %s: --addr %s, want %s", s.id, m.id, addrs[0], w)
			}
			if s.id == unixID && !strings.HasPrefix(addrs[0], "unix:///") {
				t.Errorf("%s: --addr %s, want a unix:// path", s.id, addrs[0])
			}
		}
	}
}

func TestRefused(t *testing.T) {
	runs := []*runResult{
		{Server: "echoctl", Mode: "pp128-c50", Round: 1, Result: result(1, 1, 1)},
		{Server: "socat", Mode: "pp128-c1000", Round: 1, Exit: 1, Failed: "errors"},
	}
	if err := refused(runs); err != nil {
		t.Errorf("refused = %v with no usage error", err)
	}
	runs = append(runs, &runResult{Server: tlsID, Mode: "pp128-c50", Round: 2, Exit: 2, Stderr: "echoctl: --addr is given twice\nmore"})
	err := refused(runs)
	if err == nil || err.Error() != "1 run was refused as a usage error (exit 2), the first echoctl-tls in round 2 of pp128-c50: echoctl: --addr is given twice" {
		t.Errorf("refused = %v", err)
	}
}

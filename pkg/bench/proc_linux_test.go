package bench

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name      string
		stat      string
		ppid      int
		ticks     int64
		system    int64
		wantError bool
	}{
		{"plain", "42 (echoctl) S 7 42 42 0 -1 4194560 100 0 0 0 150 50 3 2 20 0 3 0 100 0 0", 7, 205, 52, false},
		{"spaces and parentheses in the name", "42 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 1 0 0", 1, 10, 6, false},
		{"truncated", "42 (x) S 1 2 3", 0, 0, 0, true},
		{"no name", "42 x S 1", 0, 0, 0, true},
		{"not a number", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 a 2 3 4 20", 0, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseProcStat(42, []byte(tt.stat))
			if (err != nil) != tt.wantError {
				t.Fatalf("error = %v, want error %v", err, tt.wantError)
			}
			if err == nil && (st.ppid != tt.ppid || st.ticks() != tt.ticks || st.system != tt.system) {
				t.Errorf("got ppid %d ticks %d system %d, want %d %d %d", st.ppid, st.ticks(), st.system, tt.ppid, tt.ticks, tt.system)
			}
		})
	}
}

func TestProcessCPUCountsLiveChildren(t *testing.T) {
	// A child that burns CPU without exiting, so that its time is not in
	// this process's cutime: ProcessCPU must count it live. The child's
	// share of the CPU depends on the machine's load, so the test waits
	// (bounded) for 100ms of it, net of this process's own CPU time.
	cmd := exec.Command("sh", "-c", `end=$(($(date +%s) + 20)); while [ "$(date +%s)" -lt "$end" ]; do :; done`)
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	selfBefore := mustSelfCPU(t)
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var children time.Duration
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		after, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if children = (after - before) - (mustSelfCPU(t) - selfBefore); children >= 100*time.Millisecond {
			return
		}
	}
	t.Errorf("ProcessCPU counted %v of a live child's CPU in 10s of it burning", children)
}

// mustSelfCPU is selfCPU, failing t on an error.
func mustSelfCPU(t *testing.T) time.Duration {
	t.Helper()
	d, err := selfCPU()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

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
		wantError bool
	}{
		{"plain", "42 (echoctl) S 7 42 42 0 -1 4194560 100 0 0 0 150 50 3 2 20 0 3 0 100 0 0", 7, 205, false},
		{"spaces and parentheses in the name", "42 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 1 0 0", 1, 10, false},
		{"truncated", "42 (x) S 1 2 3", 0, 0, true},
		{"no name", "42 x S 1", 0, 0, true},
		{"not a number", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 a 2 3 4 20", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseProcStat(42, []byte(tt.stat))
			if (err != nil) != tt.wantError {
				t.Fatalf("error = %v, want error %v", err, tt.wantError)
			}
			if err == nil && (st.ppid != tt.ppid || st.ticks() != tt.ticks) {
				t.Errorf("got ppid %d ticks %d, want %d %d", st.ppid, st.ticks(), tt.ppid, tt.ticks)
			}
		})
	}
}

func TestProcessCPUCountsLiveChildren(t *testing.T) {
	// A child that burns CPU for a while, then sleeps without exiting, so
	// that its time is not yet in this process's cutime.
	cmd := exec.Command("sh", "-c", `end=$(($(date +%s%N) + 300000000)); while [ "$(date +%s%N)" -lt "$end" ]; do :; done; exec sleep 10`)
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	time.Sleep(500 * time.Millisecond)
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < 100*time.Millisecond {
		t.Errorf("ProcessCPU grew by %v while a child burned about 300ms", got)
	}
}

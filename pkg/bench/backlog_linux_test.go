package bench_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/bench"
)

// TestRunFailsWhenConnectionsDoNotOpen runs against a listener with a
// backlog of one that never accepts: the kernel queues two connections
// and drops the other connects, so the run cannot reach its concurrency,
// with a warmup or without.
func TestRunFailsWhenConnectionsDoNotOpen(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	tests := []struct {
		warmup time.Duration
		want   string
	}{
		{200 * time.Millisecond, "of the 10 connections were open when measuring began"},
		// With no warmup, they must all open in the measured window.
		{0, "of the 10 connections opened in the 200ms measured, with no warmup"},
	}
	for _, tt := range tests {
		cfg := bench.Config{Addr: ln.Addr().String(), Conns: 10, Warmup: tt.warmup, Duration: 200 * time.Millisecond}
		res, err := runTimed(t, context.Background(), cfg)
		if !errors.Is(err, bench.ErrRunFailed) || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("warmup %v: Run: %v, want %q", tt.warmup, err, tt.want)
		}
		if res.OpenAtStart >= 10 || res.Connects >= 10 {
			t.Errorf("warmup %v: OpenAtStart = %d, Connects = %d", tt.warmup, res.OpenAtStart, res.Connects)
		}
	}
}

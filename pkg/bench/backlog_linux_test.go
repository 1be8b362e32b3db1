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
// and drops the other connects, so the run cannot reach its concurrency.
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

	cfg := bench.Config{Addr: ln.Addr().String(), Conns: 10, Warmup: 200 * time.Millisecond, Duration: 200 * time.Millisecond}
	res, err := runTimed(t, context.Background(), cfg)
	if !errors.Is(err, bench.ErrRunFailed) || !strings.Contains(err.Error(), "of the 10 connections were open when measuring began") {
		t.Fatalf("Run: %v", err)
	}
	if res.OpenAtStart >= 10 {
		t.Errorf("OpenAtStart = %d", res.OpenAtStart)
	}
}

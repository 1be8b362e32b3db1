package cmd

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/ping"
)

// TestPingUsageErrors: bad ping flags exit 2 with one line naming the flag,
// before any probe.
func TestPingUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--size", "3"}, "echoctl: invalid --size 3: must be 16 to 1048576 bytes\n"},
		{[]string{"--size", "0"}, "echoctl: invalid --size 0: must be 16 to 1048576 bytes\n"},
		{[]string{"--addr", "127.0.0.1:1", "--addr", "127.0.0.1:2"}, `echoctl: invalid argument "127.0.0.1:2" for "--addr" flag: ping connects to one address; --addr is given twice (first "127.0.0.1:1")` + "\n"},
		{[]string{"--count", "-1"}, "echoctl: invalid --count -1: must be 0 (until interrupted) or more\n"},
		{[]string{"--interval", "-1s"}, "echoctl: invalid --interval -1s: must not be negative\n"},
		{[]string{"--interval", "10001h"}, "echoctl: invalid --interval 10001h: must be at most 10000h\n"},
		{[]string{"--deadline", "-1s"}, "echoctl: invalid --deadline -1s: must not be negative\n"},
		{[]string{"--timeout", "0"}, "echoctl: invalid timeout 0s from flag --timeout: ping needs a bound on each probe, more than 0\n"},
		{[]string{"--source", "host.example"}, `echoctl: invalid --source "host.example": must be an IP address of this machine, such as 127.0.0.1 or ::1` + "\n"},
		{[]string{"--addr", "udp://127.0.0.1:7", "--reuse"}, "echoctl: invalid --reuse true: a udp:// probe is a datagram on one socket already; --reuse is for tcp, tls and unix\n"},
		{[]string{"--addr", "udp://127.0.0.1:7", "--size", "65508"}, "echoctl: invalid --size 65508: a udp:// probe is one datagram: at most 65507 bytes over this address family\n"},
		{[]string{"--addr", "[::1]:7", "--source", "127.0.0.1"}, "echoctl: invalid --source 127.0.0.1: not of the address family of ::1: an IPv4 address sends to an IPv4 one, an IPv6 address to an IPv6 one\n"},
		{[]string{"--addr", "unix:///tmp/x.sock", "--source", "127.0.0.1"}, "echoctl: invalid --source 127.0.0.1: a unix:// address has no source address\n"},
		{[]string{"--addr", "ftp://x:1"}, "echoctl: invalid addr \"ftp://x:1\" from flag --addr: unknown scheme \"ftp\": want tcp, udp, tls or unix\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, cancelledContext(), append([]string{"ping"}, tt.args...)...)
			if r.code != ExitUsage || r.stderr != tt.want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
	// The error names where the value came from.
	isolate(t)
	t.Setenv("ECHOCTL_TIMEOUT", "0")
	want := "echoctl: invalid timeout 0s from environment ECHOCTL_TIMEOUT: ping needs a bound on each probe, more than 0\n"
	if r := run(t, cancelledContext(), "ping"); r.code != ExitUsage || r.stderr != want {
		t.Errorf("ECHOCTL_TIMEOUT=0: exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
	}
}

// TestPingInProcess: ping against serve in the same process: text lines, the
// summary, exit 0.
func TestPingInProcess(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	r := run(t, context.Background(), "ping", "--addr", srv.addr, "-c", "2", "-i", "1ms")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"seq=1 peer=" + srv.addr + " connect=", "seq=2 peer=", "--- " + srv.addr + " echoctl ping statistics ---", "2 probes sent, 2 received, 0% loss"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.stdout)
		}
	}
}

// TestPingDeadlineBeforeCount: -w that comes before -c's probes ends
// the run with its summary and exit 1, saying so, as ping(8) exits 1.
func TestPingDeadlineBeforeCount(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	r := run(t, context.Background(), "ping", "--addr", srv.addr, "-c", "1000", "-i", "20ms", "-w", "200ms")
	want := "echoctl: ping: the deadline came before --count replies\n"
	if r.code != ExitNetwork || r.stderr != want || !strings.Contains(r.stdout, "deadline: it came before the 1000 replies asked for") {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant 1, %q and the summary's deadline line", r.code, r.stderr, r.stdout, want)
	}
}

// fullWriter fails every write, as standard output on /dev/full does.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// TestPingStopsWhenOutputFails: a run until Ctrl-C whose lines cannot be
// written stops at the first that fails, with that error (exit 1); it
// probed on unseen until interrupted.
func TestPingStopsWhenOutputFails(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runPing(ctx, ping.Config{Client: &echo.Client{Addr: srv.addr}, Interval: time.Millisecond}, false, fullWriter{})
	if !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "write standard output: ") || ctx.Err() != nil {
		t.Fatalf("runPing = %v (context %v); want the write error, before the context ends", err, ctx.Err())
	}
}

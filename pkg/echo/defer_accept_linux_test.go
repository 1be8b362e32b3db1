package echo_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/pkg/echo"
)

// TestBindDefersAccept: the TCP and TLS listeners Bind made take a
// connection at its first byte (TCP_DEFER_ACCEPT) once served, unless a
// setting needs every connection as soon as its handshake completes, or
// their options turn it off.
func TestBindDefersAccept(t *testing.T) {
	leaf := certtest.NewCA(t, "defer-accept test CA").Issue(t, certtest.Options{CommonName: "echo", Hosts: []string{"127.0.0.1"}})
	local := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name   string
		addr   string
		set    func(s *echo.Server)
		defers bool
	}{
		{"defaults", "127.0.0.1:0", nil, true},
		{"tls", "tls://127.0.0.1:0", nil, true},
		{"PROXY protocol", "tcp://127.0.0.1:0?proxy-protocol=on", nil, true},
		{"write timeout, buffer size", "127.0.0.1:0", func(s *echo.Server) { s.WriteTimeout, s.BufferSize = time.Minute, 16 }, true},
		{"defer-accept=on", "tcp://127.0.0.1:0?defer-accept=on", nil, true},
		{"defer-accept=off", "tcp://127.0.0.1:0?defer-accept=off", nil, false},
		{"defer-accept=off on tls", "tls://127.0.0.1:0?defer-accept=off", nil, false},
		{"DisableDeferAccept", "127.0.0.1:0", func(s *echo.Server) { s.ListenerOptions.DisableDeferAccept = true }, false},
		{"greeting", "127.0.0.1:0", func(s *echo.Server) { s.Greeting = "hello" }, false},
		{"faults, none injected (for SetFaults)", "127.0.0.1:0", func(s *echo.Server) { s.Faults = &echo.Faults{} }, true},
		{"faults on the echo alone", "127.0.0.1:0", func(s *echo.Server) {
			s.Faults = &echo.Faults{Delay: time.Millisecond, Drop: 0.5, ResetAfter: echo.FaultAfter{Bytes: 1024}}
		}, true},
		{"refuse", "127.0.0.1:0", func(s *echo.Server) { s.Faults = &echo.Faults{Refuse: 0.5} }, false},
		{"close after a time", "127.0.0.1:0", func(s *echo.Server) { s.Faults = &echo.Faults{CloseAfter: echo.FaultAfter{Time: time.Second}} }, false},
		{"stall after a time", "127.0.0.1:0", func(s *echo.Server) { s.Faults = &echo.Faults{StallAfter: echo.FaultAfter{Time: time.Second}} }, false},
		{"a listener's delay", "tcp://127.0.0.1:0?fault-delay=1ms", nil, true},
		{"a listener's reset after a time", "tcp://127.0.0.1:0?fault-reset-after=2s", nil, false},
		{"idle timeout", "127.0.0.1:0", func(s *echo.Server) { s.IdleTimeout = time.Minute }, false},
		{"allow", "127.0.0.1:0", func(s *echo.Server) { s.Allow = local }, false},
		{"deny", "127.0.0.1:0", func(s *echo.Server) { s.Deny = local }, false},
		{"proxy-trusted", "tcp://127.0.0.1:0?proxy-protocol=on&proxy-trusted=127.0.0.0/8", nil, false},
		{"proxy-trusted, PROXY off (unused)", "tcp://127.0.0.1:0?proxy-trusted=127.0.0.0/8", nil, true},
		{"max conns", "127.0.0.1:0", func(s *echo.Server) { s.MaxConns = 10 }, false},
		{"max conns per IP", "127.0.0.1:0", func(s *echo.Server) { s.MaxConnsPerIP = 10 }, false},
		{"data logged", "127.0.0.1:0", nil, false},
		{"observer", "127.0.0.1:0", func(s *echo.Server) { s.Observer = newRecorder() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &echo.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}}
			if tt.set != nil {
				tt.set(srv)
			}
			level := zerolog.InfoLevel
			if tt.name == "data logged" {
				level = zerolog.DebugLevel
			}
			b := serveStarted(t, srv, new(watchedLog), level, tt.addr)
			if got := defers(t, b); got != tt.defers {
				t.Errorf("TCP_DEFER_ACCEPT set: %v, want %v", got, tt.defers)
			}
		})
	}
}

// TestSetFaultsDefersAccept: SetFaults takes the listener's deferring off
// for faults that act from the opening, and puts it back when they go; a
// listener that serve had taken off stays off.
func TestSetFaultsDefersAccept(t *testing.T) {
	srv := &echo.Server{Faults: &echo.Faults{}}
	b := serveStarted(t, srv, new(watchedLog), zerolog.InfoLevel, "127.0.0.1:0", "tcp://127.0.0.1:0?defer-accept=off")
	steps := []struct {
		faults *echo.Faults
		want   bool // of the first listener; the second never defers
	}{
		{&echo.Faults{Delay: time.Millisecond}, true},
		{&echo.Faults{Refuse: 1}, false},
		{&echo.Faults{ResetAfter: echo.FaultAfter{Time: time.Second}}, false},
		{&echo.Faults{ResetAfter: echo.FaultAfter{Bytes: 1}}, true},
		{nil, true},
	}
	for i, st := range steps {
		if err := srv.SetFaults(st.faults); err != nil {
			t.Fatal(err)
		}
		if got := listenerSockopt(t, b.Listeners[0].Addr(), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT) > 0; got != st.want {
			t.Errorf("step %d (%+v): first listener defers: %v, want %v", i, st.faults, got, st.want)
		}
		if listenerSockopt(t, b.Listeners[1].Addr(), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT) > 0 {
			t.Errorf("step %d: the listener with defer-accept=off defers", i)
		}
	}
}

// serveStarted binds srv to addrs and serves them until the test ends; it
// returns once every listener is served (its start-up line is logged), so
// that each has its options set. srv logs to logs at level.
func serveStarted(t *testing.T, srv *echo.Server, logs *watchedLog, level zerolog.Level, addrs ...string) *echo.Bound {
	t.Helper()
	srv.Logger = zerolog.New(logs).Level(level)
	b, err := srv.Bind(context.Background(), addrs...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeBound(b) }()
	t.Cleanup(func() {
		shutdown(srv, ioTimeout)
		<-done
	})
	logs.wait(t, "the start-up lines", func(log string) bool { return strings.Count(log, "starting up") == len(addrs) })
	return b
}

// defers reports whether b's first listener takes connections at their
// first byte.
func defers(t *testing.T, b *echo.Bound) bool {
	t.Helper()
	return listenerSockopt(t, b.Listeners[0].Addr(), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT) > 0
}

// TestDeferredAccept: on a listener that defers, a connection that sends
// nothing is taken (logged) only once it sends, ends its stream, or the
// kernel hands it over, about a second after its handshake; its echo is
// whole.
func TestDeferredAccept(t *testing.T) {
	var logs watchedLog
	b := serveStarted(t, &echo.Server{}, &logs, zerolog.InfoLevel, "127.0.0.1:0")
	addr := b.Listeners[0].Addr().String()
	line := func(c interface{ LocalAddr() net.Addr }, msg string) func(string) bool {
		name := `"logger":"` + echo.LoggerName(c.LocalAddr()) + `"`
		return func(log string) bool {
			for l := range strings.Lines(log) {
				if strings.Contains(l, name) && strings.Contains(l, `"message":"`+msg+`"`) {
					return true
				}
			}
			return false
		}
	}

	silent := dial(t, addr)
	opened := time.Now()
	// Another client's whole exchange: the silent one, whose handshake
	// came first, is not taken meanwhile.
	other := dial(t, addr)
	roundTrip(t, other, []byte("hello"))
	other.Close()
	log := logs.wait(t, "the other client's closing line", line(other, "closing"))
	if line(silent, "connection accepted")(log) {
		if waited := time.Since(opened); waited < 500*time.Millisecond {
			t.Fatalf("the silent connection was taken %v after its handshake, before it sent anything", waited)
		}
	}
	// A client that connects and ends its stream is seen at once.
	ended := dial(t, addr)
	ended.CloseWrite()
	logs.wait(t, "the closing line of a client that ended its stream", line(ended, "closing"))
	ended.Close()
	// The kernel hands the silent connection over after about a second.
	logs.wait(t, "the silent connection's accepted line", line(silent, "connection accepted"))
	if waited := time.Since(opened); waited < 500*time.Millisecond {
		t.Errorf("the silent connection was taken %v after its handshake, want about a second", waited)
	}
	roundTrip(t, silent, []byte("late"))
	silent.Close()
}

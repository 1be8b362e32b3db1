package echo_test

import (
	"context"
	"crypto/tls"
	"io"
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

// TestBindDefersAccept: Bind's TCP and TLS listeners take a connection at
// its first byte (TCP_DEFER_ACCEPT) unless a setting needs every
// connection as soon as its handshake completes, or their options turn it
// off.
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
		{"faults, none injected", "127.0.0.1:0", func(s *echo.Server) { s.Faults = &echo.Faults{} }, false},
		{"a listener's fault", "tcp://127.0.0.1:0?fault-delay=1ms", nil, false},
		{"idle timeout", "127.0.0.1:0", func(s *echo.Server) { s.IdleTimeout = time.Minute }, false},
		{"allow", "127.0.0.1:0", func(s *echo.Server) { s.Allow = local }, false},
		{"deny", "127.0.0.1:0", func(s *echo.Server) { s.Deny = local }, false},
		{"proxy-trusted", "tcp://127.0.0.1:0?proxy-protocol=on&proxy-trusted=127.0.0.0/8", nil, false},
		{"max conns", "127.0.0.1:0", func(s *echo.Server) { s.MaxConns = 10 }, false},
		{"max conns per IP", "127.0.0.1:0", func(s *echo.Server) { s.MaxConnsPerIP = 10 }, false},
		{"data logged", "127.0.0.1:0", func(s *echo.Server) { s.Logger = debugLogger(io.Discard) }, false},
		{"observer", "127.0.0.1:0", func(s *echo.Server) { s.Observer = newRecorder() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &echo.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}}
			if tt.set != nil {
				tt.set(srv)
			}
			b, err := srv.Bind(context.Background(), tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			got := listenerSockopt(t, b.Listeners[0].Addr(), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT) > 0
			if got != tt.defers {
				t.Errorf("TCP_DEFER_ACCEPT set: %v, want %v", got, tt.defers)
			}
		})
	}
}

// TestDeferredAccept: on a listener that defers, a connection that sends
// nothing is taken (logged) only once it sends, ends its stream, or the
// kernel hands it over, about a second after its handshake; its echo is
// whole.
func TestDeferredAccept(t *testing.T) {
	var logs watchedLog
	srv := &echo.Server{Logger: zerolog.New(&logs).Level(zerolog.InfoLevel)}
	b, err := srv.Bind(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeBound(b) }()
	t.Cleanup(func() {
		shutdown(srv, ioTimeout)
		<-done
	})
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

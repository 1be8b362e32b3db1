package echo_test

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/rs/zerolog"
)

// parkedConns is how many idle connections these tests hold; each is
// echoed once, then left idle until the server parks it.
const parkedConns = 20

// waitParked waits until srv has parked want connections.
func waitParked(t *testing.T, srv *echo.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for echo.ParkedConns(srv) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked after %v, want %d", echo.ParkedConns(srv), ioTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startParked serves on a new listener, opens parkedConns connections,
// echoes once on each and waits until every one is parked.
func startParked(t *testing.T, srv *echo.Server) []*net.TCPConn {
	t.Helper()
	ln := listenLocal(t)
	serve(t, srv, ln)
	conns := make([]*net.TCPConn, parkedConns)
	for i := range conns {
		conns[i] = dial(t, ln.Addr().String())
		roundTrip(t, conns[i], []byte("before parking"))
	}
	waitParked(t, srv, parkedConns)
	return conns
}

// TestParkedConnectionsHoldNoGoroutine: idle connections are parked and
// their goroutines end, which is what makes an idle connection cheap.
func TestParkedConnectionsHoldNoGoroutine(t *testing.T) {
	srv := echo.WithoutLoops(&echo.Server{})
	before := runtime.NumGoroutine()
	startParked(t, srv)
	// The parker's waiter and sweeper, and the Serve goroutine. A parked
	// connection's goroutine may still be returning when it counts as
	// parked: give them time.
	got := 0
	for deadline := time.Now().Add(ioTimeout); ; time.Sleep(10 * time.Millisecond) {
		if got = runtime.NumGoroutine() - before; got <= 3 || time.Now().After(deadline) {
			break
		}
	}
	if got > 3 {
		t.Errorf("%d goroutines more with %d parked connections, want at most 3", got, parkedConns)
	}
}

// TestParkedConnectionResumes: whatever the peer does to a parked
// connection, the server takes it up again and handles it as it would have
// without parking.
func TestParkedConnectionResumes(t *testing.T) {
	tests := []struct {
		name string
		// act acts on the parked connection c and checks the outcome.
		act func(t *testing.T, c *net.TCPConn)
		// reason is how the server logs the connection's end ("" if it
		// stays open).
		reason string
	}{
		{"echo, park again, echo", func(t *testing.T, c *net.TCPConn) {
			roundTrip(t, c, []byte("after parking"))
			roundTrip(t, c, randomBytes(7, 200<<10))
		}, ""},
		{"half-close", func(t *testing.T, c *net.TCPConn) {
			if _, err := c.Write([]byte("last words")); err != nil {
				t.Fatal(err)
			}
			c.CloseWrite()
			if got, err := readAll(c); err != nil || string(got) != "last words" {
				t.Fatalf("echo before end of stream = %q, %v; want %q", got, err, "last words")
			}
		}, "eof"},
		{"reset", func(t *testing.T, c *net.TCPConn) {
			c.SetLinger(0)
			c.Close()
		}, "reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			srv := echo.WithoutLoops(&echo.Server{Logger: zerolog.New(&logs).Level(zerolog.InfoLevel)})
			conns := startParked(t, srv)
			tt.act(t, conns[0])
			if tt.reason == "" {
				// The others are untouched; this one parks again.
				waitParked(t, srv, parkedConns)
				return
			}
			waitParked(t, srv, parkedConns-1)
			deadline := time.Now().Add(ioTimeout)
			for !strings.Contains(logs.String(), `"reason":"`+tt.reason+`","message":"closing"`) {
				if time.Now().After(deadline) {
					t.Fatalf("no closing line with reason %q in:\n%s", tt.reason, logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestShutdownWithParkedConnections: Shutdown waits for parked connections
// as for any other, and when its context ends it closes them cleanly (end
// of stream, not a reset); Close closes them at once. Neither leaves a
// goroutine behind (TestMain checks).
func TestShutdownWithParkedConnections(t *testing.T) {
	t.Run("Shutdown", func(t *testing.T) {
		srv := echo.WithoutLoops(&echo.Server{})
		conns := startParked(t, srv)
		// One peer finishes during the graceful part of the shutdown.
		done := make(chan error, 1)
		go func() { done <- shutdown(srv, 300*time.Millisecond) }()
		time.Sleep(50 * time.Millisecond)
		roundTrip(t, conns[0], []byte("during shutdown"))
		conns[0].CloseWrite()
		if got, err := readAll(conns[0]); err != nil || len(got) != 0 {
			t.Errorf("after half-close: %q, %v; want end of stream", got, err)
		}
		if err := <-done; err == nil {
			t.Errorf("Shutdown = nil, want the context's error: %d connections stayed open", parkedConns-1)
		}
		for _, c := range conns[1:] {
			if got, err := readAll(c); err != nil || len(got) != 0 {
				t.Errorf("parked connection after Shutdown: %q, %v; want end of stream", got, err)
			}
		}
	})
	t.Run("Close", func(t *testing.T) {
		srv := echo.WithoutLoops(&echo.Server{})
		conns := startParked(t, srv)
		if err := srv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, c := range conns {
			if _, err := readAll(c); err != nil && !isReset(err) {
				t.Errorf("parked connection after Close: %v; want end of stream or reset", err)
			}
		}
	})
}

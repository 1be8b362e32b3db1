// Package echotest runs echo servers on loopback for tests, as
// net/http/httptest does for HTTP.
package echotest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// A Server is an echo.Server listening on 127.0.0.1 on a port the kernel
// chose, serving in the background until the test ends.
type Server struct {
	// Server is the running server; set its fields before NewServer
	// returns it by passing them in.
	*echo.Server
	// Addr is the "127.0.0.1:port" the server listens on.
	Addr string

	done chan error
}

// NewServer starts srv (nil means a zero echo.Server) on 127.0.0.1:0 and
// shuts it down gracefully, within five seconds, when the test ends,
// failing the test if Serve ended with anything but echo.ErrServerClosed.
func NewServer(t testing.TB, srv *echo.Server) *Server {
	t.Helper()
	return NewServerOn(t, srv, "tcp", "127.0.0.1:0")
}

// NewServerOn is NewServer listening on the given network and address,
// such as "tcp6" and "[::1]:0".
func NewServerOn(t testing.TB, srv *echo.Server, network, address string) *Server {
	t.Helper()
	if srv == nil {
		srv = &echo.Server{}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatalf("echotest: listen %s %s: %v", network, address, err)
	}
	s := &Server{Server: srv, Addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("echotest: shutdown: %v", err)
		}
		if err := <-s.done; !errors.Is(err, echo.ErrServerClosed) {
			t.Errorf("echotest: serve: %v", err)
		}
	})
	return s
}

// Client returns an echo.Client for the server with a ten-second timeout.
func (s *Server) Client() *echo.Client {
	return &echo.Client{Addr: s.Addr, Timeout: 10 * time.Second}
}

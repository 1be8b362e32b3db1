package echotest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

var seedMessages = [][]byte{
	[]byte("This is the message. "),
	[]byte("It will be sent "),
	[]byte("in parts."),
}

func TestNewServer(t *testing.T) {
	tests := []struct {
		name string
		srv  *echo.Server
	}{
		{"nil server", nil},
		{"configured server", &echo.Server{BufferSize: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := echotest.NewServer(t, tt.srv)
			if tt.srv != nil && s.Server != tt.srv {
				t.Errorf("Server = %p, want the one passed in, %p", s.Server, tt.srv)
			}
			if s.Server == nil {
				t.Fatal("Server is nil")
			}
			host, port, err := net.SplitHostPort(s.Addr)
			if err != nil || host != "127.0.0.1" || port == "0" {
				t.Fatalf("Addr = %q, want 127.0.0.1 and the port the kernel chose", s.Addr)
			}

			cl := s.Client()
			if cl.Addr != s.Addr || cl.Timeout != 10*time.Second {
				t.Errorf("Client() = Addr %q Timeout %v, want %q and 10s", cl.Addr, cl.Timeout, s.Addr)
			}
			var got bytes.Buffer
			if _, err := cl.Send(t.Context(), seedMessages, &got); err != nil {
				t.Fatal(err)
			}
			if want := string(bytes.Join(seedMessages, nil)); got.String() != want {
				t.Errorf("echo = %q, want %q", got.String(), want)
			}
		})
	}
}

func TestNewServerOnIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	s := echotest.NewServerOn(t, nil, "tcp6", "[::1]:0")
	if !strings.HasPrefix(s.Addr, "[::1]:") {
		t.Fatalf("Addr = %q, want [::1]:port", s.Addr)
	}
	if _, err := s.Client().Send(t.Context(), seedMessages, nil); err != nil {
		t.Fatal(err)
	}
}

// TestCleanupStopsServer: when the test that started it ends, the server
// stops listening and Serve has returned.
func TestCleanupStopsServer(t *testing.T) {
	var s *echotest.Server
	t.Run("inner", func(t *testing.T) {
		s = echotest.NewServer(t, nil)
		if _, err := s.Client().Send(t.Context(), seedMessages, nil); err != nil {
			t.Fatal(err)
		}
	})
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after its test ended", s.Addr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, echo.ErrServerClosed) {
		t.Errorf("Serve on the server after cleanup = %v, want ErrServerClosed", err)
	}
}

// fakeTB records what NewServerOn reports, so that its failure paths can
// be checked without failing this test.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatals   []string
	errors   []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// runCleanups runs the cleanups last-registered first, as testing does.
func (f *fakeTB) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func TestNewServerOnBadAddress(t *testing.T) {
	ftb := &fakeTB{TB: t}
	done := make(chan *echotest.Server, 1)
	go func() {
		defer close(done)
		done <- echotest.NewServerOn(ftb, nil, "tcp", "127.0.0.1:70000")
	}()
	if s, ok := <-done; ok {
		t.Fatalf("NewServerOn returned %+v for a bad address", s)
	}
	if len(ftb.fatals) != 1 || !strings.Contains(ftb.fatals[0], "echotest: listen tcp 127.0.0.1:70000") {
		t.Errorf("Fatalf calls = %q, want one naming the address", ftb.fatals)
	}
	if len(ftb.cleanups) != 0 {
		t.Errorf("%d cleanups registered for a server that never started", len(ftb.cleanups))
	}
}

func TestCleanupReportsServeError(t *testing.T) {
	ftb := &fakeTB{TB: t}
	// An invalid BufferSize makes Serve fail at once.
	echotest.NewServer(ftb, &echo.Server{BufferSize: -1})
	ftb.runCleanups()
	if len(ftb.fatals) != 0 {
		t.Errorf("Fatalf calls = %q", ftb.fatals)
	}
	if len(ftb.errors) != 1 || !strings.Contains(ftb.errors[0], "echotest: serve") || !strings.Contains(ftb.errors[0], echo.ErrInvalidBufferSize.Error()) {
		t.Errorf("Errorf calls = %q, want one reporting Serve's error", ftb.errors)
	}
}

func TestCleanupReportsShutdownTimeout(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for the five-second shutdown timeout")
	}
	ftb := &fakeTB{TB: t}
	s := echotest.NewServer(ftb, nil)
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// The connection never half-closes, so the graceful shutdown times out.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cleaned := make(chan struct{})
	go func() { ftb.runCleanups(); close(cleaned) }()
	select {
	case <-cleaned:
	case <-ctx.Done():
		t.Fatal("cleanup did not finish")
	}
	if len(ftb.errors) != 1 || !strings.Contains(ftb.errors[0], "echotest: shutdown") || !strings.Contains(ftb.errors[0], context.DeadlineExceeded.Error()) {
		t.Errorf("Errorf calls = %q, want one reporting the shutdown timeout", ftb.errors)
	}
}

package echo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/echoctl/echoctl/internal/proxytest"
	"github.com/echoctl/echoctl/pkg/echo"
)

func TestReadGreeting(t *testing.T) {
	long := strings.Repeat("x", echo.MaxGreeting)
	tests := []struct {
		name, in   string
		line, rest string
		err        string
	}{
		{"LF", "backend-1\n", "backend-1", "", ""},
		{"CRLF", "backend-1\r\n", "backend-1", "", ""},
		{"empty line", "\n", "", "", ""},
		{"bytes after the line", "b\nextra", "b", "extra", ""},
		{"longest", long[:echo.MaxGreeting-1] + "\n", long[:echo.MaxGreeting-1], "", ""},
		{"too long", long + "\n", "", "", "no line end in the first 1024 bytes"},
		{"nothing", "", "", "", "before sending a greeting"},
		{"cut", "backend", "", "", "in the middle of its greeting"},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/one byte at a time %v", tt.name, oneByte), func(t *testing.T) {
				r := iotestReader(tt.in, oneByte)
				line, rest, err := echo.ReadGreeting(r)
				if tt.err != "" {
					if err == nil || !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("ReadGreeting = %q, %v; want an error containing %q", line, err, tt.err)
					}
					return
				}
				if err != nil || line != tt.line {
					t.Fatalf("ReadGreeting = %q, %v; want %q", line, err, tt.line)
				}
				if !oneByte && string(rest) != tt.rest {
					t.Errorf("rest = %q, want %q", rest, tt.rest)
				}
			})
		}
	}
}

func iotestReader(s string, oneByte bool) interface{ Read([]byte) (int, error) } {
	if oneByte {
		return iotest.OneByteReader(strings.NewReader(s))
	}
	return strings.NewReader(s)
}

// TestClientGreeting reads the greeting of a server that writes one, and
// verifies the echo after it.
func TestClientGreeting(t *testing.T) {
	for _, unix := range []bool{false, true} {
		t.Run(fmt.Sprintf("unix %v", unix), func(t *testing.T) {
			srv := proxytest.NewServer(t, proxytest.Options{Unix: unix, Greeting: func(i int) string { return fmt.Sprintf("backend-%d\r\n", i) }})
			var order []string
			trace := &echo.ClientTrace{
				Connected: func(d time.Duration) { order = append(order, fmt.Sprintf("connected %v", d > 0)) },
				Greeted:   func(line string) { order = append(order, "greeted "+line) },
				Echoed:    func(d time.Duration) { order = append(order, fmt.Sprintf("echoed %v", d > 0)) },
			}
			c := &echo.Client{Addr: srv.Addr, Timeout: ioTimeout, Greeting: true, Trace: trace}
			for i := range 2 {
				order = nil
				var out bytes.Buffer
				res, err := c.Send(t.Context(), seedMessages, &out)
				if err != nil || out.String() != seedEcho || res.Received != int64(len(seedEcho)) {
					t.Fatalf("Send = %+v %q, %v; want %q", res, out.String(), err, seedEcho)
				}
				want := fmt.Sprintf("[connected true greeted backend-%d echoed true]", i)
				if fmt.Sprint(order) != want {
					t.Errorf("trace %v, want %s", order, want)
				}
			}
		})
	}
}

// TestClientGreetingFailures: a server that writes more than its line
// is a mismatch (exit 3 in echoctl); one that writes no greeting is a
// *GreetingError.
func TestClientGreetingFailures(t *testing.T) {
	extra := proxytest.NewServer(t, proxytest.Options{Greeting: func(int) string { return "backend\nX" }})
	c := &echo.Client{Addr: extra.Addr, Timeout: ioTimeout, Greeting: true}
	_, err := c.Send(t.Context(), seedMessages, nil)
	var mm *echo.MismatchError
	if !errors.As(err, &mm) || mm.Offset != 0 || mm.Received != 'X' {
		t.Fatalf("Send to a server that writes past its greeting: %v, want a mismatch at byte 0", err)
	}

	silent := proxytest.NewServer(t, proxytest.Options{})
	c = &echo.Client{Addr: silent.Addr, Timeout: 200 * time.Millisecond, Greeting: true}
	_, err = c.Send(t.Context(), seedMessages, nil)
	var ge *echo.GreetingError
	if !errors.As(err, &ge) || !errors.Is(err, os.ErrDeadlineExceeded) ||
		err.Error() != "greeting from "+silent.Addr+": i/o timeout: nothing came before the timeout (does the server write a greeting? One that expects a PROXY header waits for it first)" {
		t.Fatalf("Send to a server without a greeting: %v, want a *GreetingError that says i/o timeout and why", err)
	}
	// With a PROXY header sent, the hint does not blame one not sent.
	proxied := proxytest.NewServer(t, proxytest.Options{Proxy: true})
	c = &echo.Client{Addr: proxied.Addr, Timeout: 200 * time.Millisecond, Greeting: true, Proxy: &echo.SendProxy{Version: 1}}
	_, err = c.Send(t.Context(), seedMessages, nil)
	if want := "greeting from " + proxied.Addr + ": i/o timeout: nothing came before the timeout (does the server write a greeting?)"; err == nil || err.Error() != want {
		t.Fatalf("Send with a PROXY header to a server without a greeting: %v, want %q", err, want)
	}
	unended := proxytest.NewServer(t, proxytest.Options{Greeting: func(int) string { return "no line end" }})
	c = &echo.Client{Addr: unended.Addr, Timeout: 200 * time.Millisecond, Greeting: true}
	_, err = c.Send(t.Context(), seedMessages, nil)
	if want := "greeting from " + unended.Addr + ": i/o timeout: bytes came, but no line end before the timeout"; !errors.Is(err, os.ErrDeadlineExceeded) || err == nil || err.Error() != want {
		t.Fatalf("Send to a server whose greeting has no line end: %v, want %q", err, want)
	}
	// Cancelled while it waits (SIGTERM to send): a cancel, not a timeout.
	ctx, cancel := context.WithCancel(t.Context())
	c = &echo.Client{Addr: silent.Addr, Timeout: ioTimeout, Greeting: true, Trace: &echo.ClientTrace{Connected: func(time.Duration) { cancel() }}}
	_, err = c.Send(ctx, seedMessages, nil)
	if !errors.Is(err, context.Canceled) || errors.As(err, &ge) || err.Error() != "echo "+silent.Addr+": context canceled" {
		t.Fatalf("Send cancelled while awaiting the greeting: %v, want context canceled, not a greeting error", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	c = &echo.Client{Addr: ln.Addr().String(), Timeout: ioTimeout, Greeting: true}
	_, err = c.Send(t.Context(), seedMessages, nil)
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), "closed the connection before sending a greeting") {
		t.Fatalf("Send to a server that closes: %v, want a *GreetingError", err)
	}
}

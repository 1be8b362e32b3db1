package echo_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestClientProxyHeaderWithFirstWrite checks where a Client's PROXY header
// goes: in one segment with the first bytes written, as HAProxy sends it,
// so that the backend reads both at once; alone, when the Client reads a
// greeting first (else it would wait for bytes the server will not send
// before the header).
func TestClientProxyHeaderWithFirstWrite(t *testing.T) {
	for _, greeting := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		client := echo.Client{Addr: ln.Addr().String(), Proxy: mustSendProxy(t, "v2", "", ""), Greeting: greeting}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		type read struct {
			first []byte
			err   error
		}
		done := make(chan read, 1)
		mayWrite := make(chan struct{})
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- read{err: err}
				return
			}
			defer c.Close()
			buf := make([]byte, 4096)
			if !greeting {
				// Nothing comes before the client's first write, held
				// back until this read has given up: then the header
				// and that write come in one.
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if n, err := c.Read(buf); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
					done <- read{first: buf[:n], err: fmt.Errorf("before the first write: read %q, %v; want nothing", buf[:n], err)}
					return
				}
				close(mayWrite)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf) // the first segment, whatever it holds
			if err == nil && greeting {
				_, err = c.Write([]byte("hello from the backend\n")) // what the client waits for
			}
			if err == nil {
				_, err = io.Copy(io.Discard, c)
			}
			done <- read{first: buf[:n], err: err}
		}()
		conn, err := client.DialContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if greeting {
			if _, _, err := echo.ReadGreeting(conn); err != nil {
				t.Fatalf("greeting: %v", err)
			}
		} else {
			select {
			case <-mayWrite:
			case r := <-done:
				t.Fatal(r.err)
			}
		}
		if _, err := conn.Write([]byte("first")); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(r.first)))
		if err != nil {
			t.Fatalf("greeting %v: first read %q: %v", greeting, r.first, err)
		}
		raw, _ := h.Format()
		rest := r.first[len(raw):]
		if want := map[bool]string{false: "first", true: ""}[greeting]; string(rest) != want {
			t.Errorf("greeting %v: the first read held %q after the header, want %q", greeting, rest, want)
		}
	}
}

// proxyHeaderServer accepts one connection on loopback, reads its PROXY
// header and hands it, the rest of the stream and the connection to then;
// the channel gets the first error, or nil.
func proxyHeaderServer(t *testing.T, then func(h *proxyproto.Header, r *bufio.Reader, c net.Conn) error) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		h, err := proxyproto.Read(r)
		if err == nil {
			err = then(h, r, c)
		}
		got <- err
	}()
	return ln.Addr().String(), got
}

// dialProxy dials addr with a Client that sends a v2 PROXY header from
// source ("": the connection's own address).
func dialProxy(t *testing.T, addr, source string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	conn, err := (&echo.Client{Addr: addr, Proxy: mustSendProxy(t, "v2", source, "")}).DialContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// TestClientProxyHeaderWithoutWrite: a connection that reads, half-closes
// or closes before it writes sends its PROXY header alone first, and the
// server sees exactly the header before anything else.
func TestClientProxyHeaderWithoutWrite(t *testing.T) {
	for _, tt := range []struct {
		name string
		use  func(net.Conn) error
	}{
		{"read first", func(c net.Conn) error {
			b := make([]byte, 16)
			n, err := c.Read(b) // the server answers the header
			if err == nil && string(b[:n]) != "seen" {
				err = fmt.Errorf("read %q, want %q", b[:n], "seen")
			}
			return err
		}},
		{"close write first", func(c net.Conn) error {
			return c.(interface{ CloseWrite() error }).CloseWrite()
		}},
		{"close unused", func(net.Conn) error { return nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, got := proxyHeaderServer(t, func(h *proxyproto.Header, _ *bufio.Reader, c net.Conn) error {
				if h.SourceAddr.String() != "203.0.113.7:41000" {
					return fmt.Errorf("header from %v, want 203.0.113.7:41000", h.SourceAddr)
				}
				c.Write([]byte("seen")) // what "read first" waits for; the others may have closed
				return nil
			})
			conn := dialProxy(t, addr, "203.0.113.7:41000")
			uerr := tt.use(conn)
			conn.Close()
			if uerr != nil {
				t.Fatal(uerr)
			}
			if err := <-got; err != nil {
				t.Fatalf("server: %v", err)
			}
		})
	}
}

// TestClientProxyHeaderWithLargeFirstWrite: a first write too long to be
// copied after the header (writev) arrives whole, after the header.
func TestClientProxyHeaderWithLargeFirstWrite(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	addr, got := proxyHeaderServer(t, func(_ *proxyproto.Header, r *bufio.Reader, _ net.Conn) error {
		rest, err := io.ReadAll(r)
		if err == nil && !bytes.Equal(rest, msg) {
			err = fmt.Errorf("read %d bytes after the header, want the %d written", len(rest), len(msg))
		}
		return err
	})
	conn := dialProxy(t, addr, "")
	if n, err := conn.Write(msg); n != len(msg) || err != nil {
		t.Fatalf("Write: %d, %v; want %d, nil", n, err, len(msg))
	}
	conn.Close()
	if err := <-got; err != nil {
		t.Fatalf("server: %v", err)
	}
}

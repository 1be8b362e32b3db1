// Package proxytest runs, for tests, small in-process echo servers that
// stand where a backend behind a load balancer would: one that requires a
// PROXY protocol header, parses it with go-proxyproto (as a receiver
// does) and records it, and one that writes a greeting line first. They
// listen on loopback TCP (optionally TLS, the header before the
// handshake) or a Unix socket, and stop when the test ends.
package proxytest

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// ioTimeout bounds each connection's I/O, so that a test that goes wrong
// fails instead of hanging.
const ioTimeout = 10 * time.Second

// Options say what a Server does on each connection, in order: read a
// PROXY header (Proxy), the TLS handshake (TLS), write a greeting
// (Greeting), then echo until the client half-closes.
type Options struct {
	// Unix listens on a Unix socket in a temporary directory instead of
	// 127.0.0.1:0.
	Unix bool
	// Proxy requires a PROXY header from every connection; a connection
	// without a valid one is closed at once.
	Proxy bool
	// TLS, if not nil, serves TLS after the header.
	TLS *tls.Config
	// Greeting, if not nil, is written first on each connection: i counts
	// the connections from 0.
	Greeting func(i int) string
}

// Server is a running test server.
type Server struct {
	// Addr is the address to give echoctl: 127.0.0.1:PORT, or
	// unix:///path, or tls://127.0.0.1:PORT with Options.TLS.
	Addr string
	// Listener is what the server accepts on.
	Listener net.Listener

	opts    Options
	headers chan *proxyproto.Header
	mu      sync.Mutex
	n       int
	read    int // headers read
	errs    []error
	wg      sync.WaitGroup
}

// NewServer starts a server with opts; it stops when the test ends.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, headers: make(chan *proxyproto.Header, 1024)}
	var err error
	if opts.Unix {
		path := filepath.Join(t.TempDir(), "echo.sock")
		s.Listener, err = net.Listen("unix", path)
		s.Addr = "unix://" + path
	} else {
		s.Listener, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			s.Addr = s.Listener.Addr().String()
			if opts.TLS != nil {
				s.Addr = "tls://" + s.Addr
			}
		}
	}
	if err != nil {
		t.Fatalf("proxytest: listen: %v", err)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		s.Listener.Close()
		s.wg.Wait()
	})
	return s
}

// Header returns the next PROXY header the server read, waiting for it
// up to ioTimeout.
func (s *Server) Header(t testing.TB) *proxyproto.Header {
	t.Helper()
	select {
	case h := <-s.headers:
		if h == nil {
			t.Fatalf("proxytest: a connection came without a valid PROXY header: %v", s.Errors())
		}
		return h
	case <-time.After(ioTimeout):
		t.Fatalf("proxytest: no PROXY header within %v", ioTimeout)
		return nil
	}
}

// record keeps h for Header, unless the first 1024 are still unread
// (a load test opens many connections).
func (s *Server) record(h *proxyproto.Header) {
	select {
	case s.headers <- h:
	default:
	}
}

// Conns returns how many connections the server has accepted, and how
// many of them sent a valid PROXY header.
func (s *Server) Conns() (accepted, headers int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.read
}

// Errors returns the errors the server met reading PROXY headers.
func (s *Server) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		i := s.n
		s.n++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(c, i)
		}()
	}
}

// readerConn reads through a bufio.Reader that may hold bytes read past
// the PROXY header.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (s *Server) serve(c net.Conn, i int) {
	c.SetDeadline(time.Now().Add(ioTimeout))
	var conn net.Conn = c
	if s.opts.Proxy {
		br := bufio.NewReader(c)
		if _, err := br.Peek(1); err != nil {
			return // closed before sending anything: no header to judge
		}
		h, err := proxyproto.Read(br)
		if err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
			s.record(nil)
			return
		}
		s.mu.Lock()
		s.read++
		s.mu.Unlock()
		s.record(h)
		conn = readerConn{Conn: c, r: br}
	}
	halfClose := func() {
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	if s.opts.TLS != nil {
		tc := tls.Server(conn, s.opts.TLS)
		if tc.Handshake() != nil {
			return
		}
		conn, halfClose = tc, func() { tc.CloseWrite() }
	}
	if s.opts.Greeting != nil {
		if _, err := io.WriteString(conn, s.opts.Greeting(i)); err != nil {
			return
		}
	}
	io.Copy(conn, conn)
	halfClose()
	io.Copy(io.Discard, conn)
}

// NewRoundRobin starts a TCP balancer on 127.0.0.1:0 in front of
// backends (TCP servers): it hands each connection it accepts to the next
// backend in turn and copies bytes both ways, half-closes included, as
// HAProxy in TCP mode with "balance roundrobin" does. It stops when the
// test ends.
func NewRoundRobin(t testing.TB, backends ...*Server) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxytest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), Listener: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				b, err := net.DialTimeout("tcp", backends[i%len(backends)].Listener.Addr().String(), ioTimeout)
				if err != nil {
					return
				}
				defer b.Close()
				c.SetDeadline(time.Now().Add(ioTimeout))
				b.SetDeadline(time.Now().Add(ioTimeout))
				done := make(chan struct{})
				go func() {
					defer close(done)
					io.Copy(b, c)
					b.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, b)
				c.(*net.TCPConn).CloseWrite()
				<-done
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

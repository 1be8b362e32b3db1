package echo_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/pkg/echo"
)

// tlsFixture is a CA and a server certificate for localhost and 127.0.0.1.
type tlsFixture struct {
	ca     *certtest.CA
	server *certtest.Leaf
}

func newTLSFixture(t *testing.T) tlsFixture {
	t.Helper()
	ca := certtest.NewCA(t, "echo test CA")
	return tlsFixture{ca: ca, server: ca.Issue(t, certtest.Options{CommonName: "echo server", Hosts: []string{"localhost", "127.0.0.1", "::1"}})}
}

// serveBound binds addrs on srv and serves them until the test ends; it
// returns the bound addresses (Bound.Addrs) and the running ServeBound.
func serveBound(t *testing.T, srv *echo.Server, addrs ...string) ([]string, *serving) {
	t.Helper()
	b, err := srv.Bind(t.Context(), addrs...)
	if err != nil {
		t.Fatalf("Bind %q: %v", addrs, err)
	}
	s := &serving{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = srv.ServeBound(b)
	}()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-s.done:
		case <-time.After(ioTimeout):
			t.Errorf("ServeBound did not return after Close")
		}
	})
	return b.Addrs(), s
}

// serveTLS serves TLS on 127.0.0.1 with cfg and returns the tls:// address.
func serveTLS(t *testing.T, srv *echo.Server, cfg *tls.Config) string {
	t.Helper()
	srv.TLSConfig = cfg
	addrs, _ := serveBound(t, srv, "tls://127.0.0.1:0")
	return addrs[0]
}

func TestTLSEcho(t *testing.T) {
	fx := newTLSFixture(t)
	big := randomBytes(42, 1<<20)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, logged := range []bool{false, true} {
			name := tls.VersionName(version)
			if logged {
				name += " debug logged"
			}
			t.Run(name, func(t *testing.T) {
				srv := &echo.Server{}
				if logged {
					srv.Logger = debugLogger(&syncBuffer{})
				}
				addr := serveTLS(t, srv, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}})
				c := &echo.Client{Addr: addr, Timeout: ioTimeout, TLSConfig: &tls.Config{RootCAs: fx.ca.Pool(), MaxVersion: version}}
				var out bytes.Buffer
				if _, err := c.Send(t.Context(), seedMessages, &out); err != nil || out.String() != seedEcho {
					t.Fatalf("Send = %q, %v; want %q", out.String(), err, seedEcho)
				}
				out.Reset()
				binary := append(allBytesT(), big[:1000]...)
				if _, err := c.Send(t.Context(), [][]byte{binary}, &out); err != nil || !bytes.Equal(out.Bytes(), binary) {
					t.Fatalf("Send of binary data: %v (echo %d bytes)", err, out.Len())
				}
				if logged {
					return // 1 MiB in 128-byte chunks is slow under -race
				}
				out.Reset()
				if _, err := c.SendStream(t.Context(), bytes.NewReader(big), &out); err != nil || !bytes.Equal(out.Bytes(), big) {
					t.Fatalf("SendStream of 1 MiB: %v (echo %d bytes)", err, out.Len())
				}
			})
		}
	}
}

// TestTLSClientServerName connects to "localhost", the name in the
// certificate, without setting ServerName: the client uses the host.
func TestTLSClientServerName(t *testing.T) {
	fx := newTLSFixture(t)
	addr := serveTLS(t, &echo.Server{}, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(addr, "tls://"))
	r := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {loopback4}}}
	c := &echo.Client{Addr: "tls://localhost:" + port, Timeout: ioTimeout, Resolver: r, TLSConfig: &tls.Config{RootCAs: fx.ca.Pool()}}
	if _, err := c.Send(t.Context(), seedMessages, io.Discard); err != nil {
		t.Fatalf("Send: %v", err)
	}
	c.TLSConfig.ServerName = "other.example"
	_, err := c.Send(t.Context(), seedMessages, io.Discard)
	var de *echo.DialError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "other.example") {
		t.Fatalf("Send with the wrong ServerName = %v; want a DialError naming it", err)
	}
}

// TestTLSClientServerNameZone: an IPv6 address with a zone is verified
// against the address alone, as a certificate names it (::1, not ::1%lo).
func TestTLSClientServerNameZone(t *testing.T) {
	requireIPv6(t)
	fx := newTLSFixture(t)
	srv := &echo.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}}
	addrs, _ := serveBound(t, srv, "tls://[::1]:0")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(addrs[0], "tls://"))
	c := &echo.Client{Addr: "tls://[::1%lo]:" + port, Timeout: ioTimeout, TLSConfig: &tls.Config{RootCAs: fx.ca.Pool()}}
	if _, err := c.Send(t.Context(), seedMessages, io.Discard); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// handshakeFailures returns the server's "TLS handshake failed" lines.
func handshakeFailures(t *testing.T, logs *syncBuffer) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range parseLog(t, logs.String()) {
		if strings.HasPrefix(l.Message, "TLS handshake failed") {
			out = append(out, l)
		}
	}
	return out
}

// waitConnsClosed waits until rec has been told of n closed connections,
// whatever their reason: everything the server logs about a connection
// is logged by then.
func waitConnsClosed(t *testing.T, rec *recorder, n int) {
	t.Helper()
	deadline := time.After(ioTimeout)
	for rec.totalClosed() < n {
		select {
		case <-rec.changed:
		case <-deadline:
			t.Fatalf("waited %v for %d connections to close; %d did", ioTimeout, n, rec.totalClosed())
		}
	}
}

// waitFailure waits for the server to close the connection whose
// handshake failed, as rec hears it, and returns the line it logged about
// the failure; there must be exactly one.
func waitFailure(t *testing.T, logs *syncBuffer, rec *recorder) logLine {
	t.Helper()
	waitConnsClosed(t, rec, 1)
	f := handshakeFailures(t, logs)
	if len(f) != 1 {
		t.Fatalf("%d handshake failure lines, want 1:\n%s", len(f), logs.String())
	}
	if f[0].Level != "warn" || !strings.HasPrefix(f[0].Logger, "echo_127.0.0.1_") {
		t.Errorf("failure line %+v: want level warn on the connection's logger", f[0])
	}
	return f[0]
}

func TestTLSMutual(t *testing.T) {
	fx := newTLSFixture(t)
	client := fx.ca.Issue(t, certtest.Options{CommonName: "good client", Client: true})
	rogue := certtest.NewCA(t, "rogue CA").Issue(t, certtest.Options{CommonName: "rogue client", Client: true})
	expired := fx.ca.Issue(t, certtest.Options{CommonName: "old client", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	tests := []struct {
		name    string
		certs   []tls.Certificate // presented whatever CAs the server names
		version uint16
		reason  string // the server's log line, after "TLS handshake failed: "
	}{
		{name: "valid client certificate", certs: []tls.Certificate{client.TLS}},
		{name: "valid client certificate TLS 1.2", certs: []tls.Certificate{client.TLS}, version: tls.VersionTLS12},
		{name: "no client certificate", reason: "tls: client didn't provide a certificate"},
		{name: "no client certificate TLS 1.2", version: tls.VersionTLS12, reason: "tls: client didn't provide a certificate"},
		{name: "certificate from another CA", certs: []tls.Certificate{rogue.TLS}, reason: "certificate signed by unknown authority"},
		{name: "expired certificate", certs: []tls.Certificate{expired.TLS}, reason: "certificate has expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			rec := newRecorder()
			srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec}
			addr := serveTLS(t, srv, &tls.Config{
				Certificates: []tls.Certificate{fx.server.TLS},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    fx.ca.Pool(),
			})
			c := &echo.Client{Addr: addr, Timeout: ioTimeout, TLSConfig: &tls.Config{
				RootCAs: fx.ca.Pool(), MaxVersion: tt.version,
				// Go's client would send no certificate rather than one
				// the server's CAs did not sign: force it.
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					if len(tt.certs) == 0 {
						return &tls.Certificate{}, nil
					}
					return &tt.certs[0], nil
				},
			}}
			var out bytes.Buffer
			_, err := c.Send(t.Context(), seedMessages, &out)
			if tt.reason == "" {
				if err != nil || out.String() != seedEcho {
					t.Fatalf("Send = %q, %v; want the echo", out.String(), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Send succeeded without a valid client certificate")
			}
			if out.Len() != 0 {
				t.Errorf("echo %q came back without a valid client certificate", out.String())
			}
			if !strings.Contains(err.Error(), "remote error: tls:") {
				t.Errorf("client error %q; want the server's alert", err)
			}
			if l := waitFailure(t, &logs, rec); !strings.Contains(l.Message, tt.reason) {
				t.Errorf("server logged %q; want it to say %q", l.Message, tt.reason)
			}
		})
	}
}

// TestTLSHandshakeFailuresAreIsolated makes the handshake fail in several
// ways while a good client holds a connection open: each failure is one
// warn line, and the good connection is not disturbed.
func TestTLSHandshakeFailuresAreIsolated(t *testing.T) {
	fx := newTLSFixture(t)
	var logs syncBuffer
	rec := newRecorder()
	srv := &echo.Server{Logger: debugLogger(&logs), HandshakeTimeout: 300 * time.Millisecond, Observer: rec}
	addr := serveTLS(t, srv, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}})
	hostport := strings.TrimPrefix(addr, "tls://")

	good, err := tls.Dial("tcp", hostport, &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	roundTrip(t, good, []byte("before"))

	tests := []struct {
		name   string
		client func(t *testing.T)
		reason string
	}{
		{"plain TCP client", func(t *testing.T) {
			c := dial(t, hostport)
			c.Write([]byte("This is the message. \n"))
			c.CloseWrite()
			readAll(c)
		}, "TLS handshake failed: the client does not speak TLS (first record does not look like a TLS handshake)"},
		{"client that does not trust the server", func(t *testing.T) {
			c := &echo.Client{Addr: addr, Timeout: ioTimeout, TLSConfig: &tls.Config{RootCAs: certtest.NewCA(t, "other").Pool()}}
			_, err := c.Send(t.Context(), seedMessages, nil)
			if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
				t.Errorf("client error %v; want unknown authority", err)
			}
		}, "TLS handshake failed: remote error: tls: bad certificate"},
		{"client that never speaks", func(t *testing.T) {
			c := dial(t, hostport)
			readAll(c) // the server closes it after HandshakeTimeout
		}, "TLS handshake failed: no handshake within 300ms"},
		{"client that leaves mid-handshake", func(t *testing.T) {
			c := dial(t, hostport)
			c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x50}) // a record header, then nothing
			c.Close()
		}, "TLS handshake failed: the client closed the connection during the handshake"},
		{"TLS 1.1 client", func(t *testing.T) {
			// echo.Client will not go below TLS 1.2 either: dial directly.
			c, err := tls.Dial("tcp", hostport, &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			if err == nil {
				c.Close()
				t.Error("a TLS 1.1 client was served")
			}
		}, "TLS handshake failed: tls: client offered only unsupported versions: [302 301]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(handshakeFailures(t, &logs))
			closed := rec.totalClosed()
			tt.client(t)
			waitConnsClosed(t, rec, closed+1) // the server has logged all it will about it
			f := handshakeFailures(t, &logs)
			if len(f) != before+1 {
				t.Fatalf("%d new failure lines, want 1:\n%s", len(f)-before, logs.String())
			}
			if got := f[before]; got.Message != tt.reason || got.Level != "warn" {
				t.Errorf("logged %s %q, want warn %q", got.Level, got.Message, tt.reason)
			}
			roundTrip(t, good, []byte("still served after: "+tt.name))
		})
	}
}

func TestTLSShutdownWithConnectionOpen(t *testing.T) {
	fx := newTLSFixture(t)
	srv := &echo.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}}
	addrs, s := serveBound(t, srv, "tls://127.0.0.1:0")
	c, err := tls.Dial("tcp", strings.TrimPrefix(addrs[0], "tls://"), &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("open"))
	shut := make(chan error, 1)
	go func() { shut <- shutdown(srv, ioTimeout) }()
	// Serve returns as soon as Shutdown has begun.
	if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
		t.Fatalf("ServeBound = %v, want ErrServerClosed once Shutdown begins", err)
	}
	c.Write([]byte("last words"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(c)
	if err != nil || string(got) != "last words" {
		t.Fatalf("echo after Shutdown began = %q, %v", got, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestTLSHandshakeFailsWhileDraining: a handshake that fails while
// Shutdown waits for the open connections, before its deadline, is a
// failed handshake (one warning, its own reason), not a shutdown.
func TestTLSHandshakeFailsWhileDraining(t *testing.T) {
	fx := newTLSFixture(t)
	var logs syncBuffer
	rec := newRecorder()
	srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}}
	addrs, s := serveBound(t, srv, "tls://127.0.0.1:0")
	c := dial(t, strings.TrimPrefix(addrs[0], "tls://"))
	c.Write([]byte("\x16\x03\x01")) // a ClientHello's first bytes
	// Counted as open, not only told to the Observer (which hears of it
	// first): a Shutdown sooner would refuse it before its handshake.
	waitUntil(t, "the connection counted", func() bool { return echo.OpenConns(srv) == 1 })
	shut := make(chan error, 1)
	go func() { shut <- shutdown(srv, ioTimeout) }()
	if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
		t.Fatalf("ServeBound = %v, want ErrServerClosed once Shutdown begins", err)
	}
	c.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v, want nil: the connection ended before its deadline", err)
	}
	f := waitFailure(t, &logs, rec)
	if !strings.Contains(f.Message, "closed the connection during the handshake") {
		t.Errorf("failure line %q", f.Message)
	}
	if n := rec.closedCount(echo.CloseShutdown); n != 0 {
		t.Errorf("%d connections closed for shutdown, want 0:\n%s", n, logs.String())
	}
}

func TestBindTLSNeedsConfig(t *testing.T) {
	for _, cfg := range []*tls.Config{nil, {}} {
		srv := &echo.Server{TLSConfig: cfg}
		_, err := srv.Bind(t.Context(), "tls://127.0.0.1:0")
		if !errors.Is(err, echo.ErrNoTLSConfig) || !strings.HasPrefix(err.Error(), "echo: listen tls://127.0.0.1:0: ") {
			t.Errorf("Bind with TLSConfig %v = %v; want ErrNoTLSConfig", cfg, err)
		}
	}
}

// TestTLSWriteTimeoutClosesAtOnce: a TLS peer that reads none of the echo
// is closed at the write timeout, not seconds later. tls.Conn.Close tried
// to send close_notify into the socket the peer does not read, waiting up
// to 5s of its own: 200 such clients with a 3s write timeout stayed open
// until 13-14s.
func TestTLSWriteTimeoutClosesAtOnce(t *testing.T) {
	const (
		wt      = 200 * time.Millisecond
		clients = 3
		// tls.Conn.Close's own close_notify wait is 5s; a close that
		// waits for it takes longer than this, one that does not takes
		// about wt.
		closeBound = 3 * time.Second
	)
	fx := newTLSFixture(t)
	rec := newRecorder()
	srv := &echo.Server{WriteTimeout: wt, Observer: rec}
	addr := strings.TrimPrefix(serveTLS(t, srv, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}), "tls://")
	type result struct {
		written int
		err     error
		after   time.Duration
	}
	results := make(chan result, clients)
	for range clients {
		raw := dial(t, addr)
		// A small receive buffer: the server's writes stall soon.
		raw.SetReadBuffer(16 << 10)
		c := tls.Client(raw, &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "localhost"})
		c.SetDeadline(time.Now().Add(ioTimeout))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		go func() {
			start := time.Now()
			n, err := fillUntilClosed(c, ioTimeout)
			results <- result{n, err, time.Since(start)}
		}()
	}
	for range clients {
		r := <-results
		if errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server never closed a TLS connection whose peer does not read (wrote %d bytes)", r.written)
		}
		if !isReset(r.err) && !errors.Is(r.err, syscall.EPIPE) {
			t.Errorf("writing to the closed connection: %v; want a reset or broken pipe", r.err)
		}
		if r.after < wt {
			t.Errorf("closed %v after the client began writing, before the %v write timeout", r.after, wt)
		}
		if r.after > closeBound {
			t.Errorf("closed %v after the client began writing, with a %v write timeout: the close waited for close_notify", r.after, wt)
		}
	}
	rec.waitClosed(t, echo.CloseWriteTimeout, clients)
}

// TestTLSShutdownWithPeerNotReading: when Shutdown's context ends, a TLS
// connection stuck writing back to a peer that reads nothing is closed once
// that write has had its second (drainLinger), not 5s later: the TLS
// half-close waited that long to send close_notify into the full socket.
func TestTLSShutdownWithPeerNotReading(t *testing.T) {
	// A second to finish the write back, none of tls's 5s for close_notify.
	const bound = 4 * time.Second
	fx := newTLSFixture(t)
	srv := &echo.Server{}
	addr := strings.TrimPrefix(serveTLS(t, srv, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}), "tls://")
	raw := dial(t, addr)
	raw.SetReadBuffer(16 << 10)
	c := tls.Client(raw, &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "localhost"})
	c.SetDeadline(time.Now().Add(ioTimeout))
	roundTrip(t, c, []byte("hello"))
	var written atomic.Int64
	filled := make(chan error, 1)
	go func() {
		chunk := make([]byte, 4<<10)
		for {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				filled <- err
				return
			}
		}
	}()
	// The server's write back is stuck once it no longer reads.
	waitPeerStalled(t, raw)
	t.Logf("the server stopped reading after the client wrote %d bytes", written.Load())
	start := time.Now()
	if err := shutdown(srv, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want its context's deadline", err)
	}
	if d := time.Since(start); d > bound {
		t.Errorf("Shutdown took %v with a 50ms context: the close waited for close_notify", d)
	}
	if err := <-filled; !isReset(err) && !errors.Is(err, syscall.EPIPE) {
		t.Errorf("writing to the closed connection: %v; want a reset or broken pipe", err)
	}
}

// TestTLSFailureFloodLogged: plaintext clients in a loop on a TLS port get
// a line a second, counting those held back, and the rest when the server
// stops; every failure is counted once. 50 made 50 lines.
func TestTLSFailureFloodLogged(t *testing.T) {
	const conns = 50
	fx := newTLSFixture(t)
	rec := newRecorder()
	var logs syncBuffer
	srv := &echo.Server{Observer: rec, Logger: zerolog.New(&logs)}
	addr := strings.TrimPrefix(serveTLS(t, srv, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}), "tls://")
	for range conns {
		c := dial(t, addr)
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		io.Copy(io.Discard, c) // until the server closes it
		c.Close()
	}
	waitConnsClosed(t, rec, conns)
	if err := shutdown(srv, ioTimeout); err != nil {
		t.Fatal(err)
	}
	lines, counted := 0, 0
	more := regexp.MustCompile(`^(\d+) more TLS handshakes failed \(not TLS\) since the last report$|\((\d+) more failed since the last report\)$`)
	for _, l := range parseLog(t, logs.String()) {
		if strings.HasPrefix(l.Message, "TLS handshake failed: the client does not speak TLS") {
			lines++
			counted++
		}
		if m := more.FindStringSubmatch(l.Message); m != nil {
			n, _ := strconv.Atoi(m[1] + m[2])
			counted += n
		}
	}
	if counted != conns || lines > conns/2 {
		t.Errorf("%d failures counted in %d lines, want %d in a line a second:\n%s", counted, lines, conns, logs.String())
	}
}

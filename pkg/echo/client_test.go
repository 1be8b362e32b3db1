package echo_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

func TestClientSend(t *testing.T) {
	many := make([][]byte, 200)
	for i := range many {
		many[i] = randomBytes(uint64(i), i*13%300+1)
	}
	tests := []struct {
		name     string
		messages [][]byte
	}{
		{"seed messages", seedMessages},
		{"no messages", nil},
		{"one empty message", [][]byte{{}}},
		{"a few empty messages among others", [][]byte{{}, []byte("a"), {}, {}, []byte("b"), {}}},
		{"one byte", [][]byte{{0}}},
		{"all byte values", [][]byte{allBytes()}},
		{"more messages than chunks in flight", many},
		{"1 MiB", [][]byte{randomBytes(1, 1<<20)}},
	}
	ts := echotest.NewServer(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := bytes.Join(tt.messages, nil)
			var got bytes.Buffer
			res, err := ts.Client().Send(t.Context(), tt.messages, &got)
			if err != nil {
				t.Fatal(err)
			}
			if n := int64(len(want)); res != (echo.Result{Sent: n, Received: n}) {
				t.Errorf("Send = %+v, want %d bytes each way", res, n)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("echo writer got %d bytes differing at %d; want the %d sent", got.Len(), firstDiff(got.Bytes(), want), len(want))
			}
		})
	}
	t.Run("nil echo writer", func(t *testing.T) {
		res, err := ts.Client().Send(t.Context(), seedMessages, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := int64(len(seedEcho)); res != (echo.Result{Sent: n, Received: n}) {
			t.Errorf("Send = %+v, want %d bytes each way", res, n)
		}
	})
}

// TestClientSendManyEmptyMessages: empty messages send nothing, so their
// echo never arrives to take them off the verifier's queue.
func TestClientSendManyEmptyMessages(t *testing.T) {
	ts := echotest.NewServer(t, nil)
	cl := &echo.Client{Addr: ts.Addr, Timeout: 2 * time.Second}
	msgs := append(make([][]byte, 100), []byte("end"))
	var got bytes.Buffer
	res, err := cl.Send(t.Context(), msgs, &got)
	if err != nil {
		t.Fatalf("Send of 100 empty messages and %q: %v", "end", err)
	}
	if res != (echo.Result{Sent: 3, Received: 3}) || got.String() != "end" {
		t.Errorf("Send = %+v, echo %q; want 3 bytes each way, %q", res, got.String(), "end")
	}
}

// shortReader returns at most a random 1..max bytes per Read, and
// sometimes (0, nil), which io.Reader allows.
type shortReader struct {
	r   io.Reader
	rng *rand.Rand
	max int
}

func (s *shortReader) Read(p []byte) (int, error) {
	if s.rng.IntN(10) == 0 {
		return 0, nil
	}
	return s.r.Read(p[:min(len(p), 1+s.rng.IntN(s.max))])
}

func TestClientSendStream(t *testing.T) {
	big := randomBytes(11, 5<<20)
	mid := randomBytes(12, 256<<10)
	small := randomBytes(13, 8<<10)
	tests := []struct {
		name   string
		data   []byte
		reader func(b []byte) io.Reader
	}{
		{"5 MiB bytes.Reader", big, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"short reads", mid, func(b []byte) io.Reader {
			return &shortReader{r: bytes.NewReader(b), rng: rand.New(rand.NewPCG(1, 2)), max: 777}
		}},
		{"half reads", mid, func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
		{"data with EOF", mid, func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
		{"one byte reads", small, func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		{"empty", nil, func(b []byte) io.Reader { return bytes.NewReader(b) }},
	}
	ts := echotest.NewServer(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := ts.Client()
			cl.BufferSize = 32 << 10
			var got bytes.Buffer
			res, err := cl.SendStream(t.Context(), tt.reader(tt.data), &got)
			if err != nil {
				t.Fatal(err)
			}
			if n := int64(len(tt.data)); res != (echo.Result{Sent: n, Received: n}) {
				t.Errorf("SendStream = %+v, want %d bytes each way", res, n)
			}
			if !bytes.Equal(got.Bytes(), tt.data) {
				t.Errorf("echo writer got %d bytes differing at %d; want the %d sent", got.Len(), firstDiff(got.Bytes(), tt.data), len(tt.data))
			}
		})
	}
}

// TestClientSendStreamInputError: when the input fails, SendStream must
// return that error promptly, not wait for an echo that cannot end because
// the client never half-closed.
func TestClientSendStreamInputError(t *testing.T) {
	errInput := errors.New("input broke")
	ts := echotest.NewServer(t, nil)
	cl := &echo.Client{Addr: ts.Addr, Timeout: 5 * time.Second}
	r := io.MultiReader(bytes.NewReader([]byte("some data")), iotest.ErrReader(errInput))
	start := time.Now()
	_, err := cl.SendStream(t.Context(), r, nil)
	if !errors.Is(err, errInput) {
		t.Errorf("SendStream = %v, want the input's error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("SendStream took %v to report a failed input", d)
	}
}

// fakeServer accepts connections on 127.0.0.1 and hands each to handle;
// stop is closed when the test ends, after which handle must return.
func fakeServer(t *testing.T, handle func(c *net.TCPConn, stop <-chan struct{})) string {
	t.Helper()
	ln := listenLocal(t)
	stop := make(chan struct{})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c.(*net.TCPConn), stop)
			})
		}
	})
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(ioTimeout):
			t.Error("fake server handlers did not return")
		}
	})
	return ln.Addr().String()
}

// readUntilEOF reads everything the client sends before it half-closes.
func readUntilEOF(c net.Conn) []byte {
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	b, _ := io.ReadAll(c)
	return b
}

func TestClientDetectsBadEcho(t *testing.T) {
	tests := []struct {
		name   string
		handle func(c *net.TCPConn, stop <-chan struct{})
		want   echo.MismatchError
		msg    string
	}{
		{
			name: "flipped byte at 17",
			handle: func(c *net.TCPConn, _ <-chan struct{}) {
				var off int
				buf := make([]byte, 5)
				for {
					n, err := c.Read(buf)
					for i := range n {
						if off+i == 17 {
							buf[i]++
						}
					}
					off += n
					if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
						return
					}
				}
			},
			want: echo.MismatchError{Offset: 17, Sent: 'g', Received: 'h'},
			msg:  "echo differs from what was sent at byte 17: sent b'g', received b'h'",
		},
		{
			name: "first 10 bytes then close",
			handle: func(c *net.TCPConn, _ <-chan struct{}) {
				b := readUntilEOF(c)
				c.Write(b[:10])
			},
			want: echo.MismatchError{Offset: 10, Short: true},
			msg:  "echo differs from what was sent: the server closed after 10 bytes, before the echo was complete",
		},
		{
			name: "extra bytes",
			handle: func(c *net.TCPConn, _ <-chan struct{}) {
				b := readUntilEOF(c)
				c.Write(append(b, "EXTRA"...))
			},
			want: echo.MismatchError{Offset: int64(len(seedEcho)), Received: 'E', Extra: true},
			msg:  fmt.Sprintf("echo differs from what was sent at byte %d: received b'E' after the end of what was sent", len(seedEcho)),
		},
	}
	senders := []struct {
		name string
		send func(c *echo.Client, ctx context.Context) (echo.Result, error)
	}{
		{"Send", func(c *echo.Client, ctx context.Context) (echo.Result, error) {
			return c.Send(ctx, seedMessages, nil)
		}},
		{"SendStream", func(c *echo.Client, ctx context.Context) (echo.Result, error) {
			return c.SendStream(ctx, strings.NewReader(seedEcho), nil)
		}},
	}
	for _, tt := range tests {
		for _, s := range senders {
			t.Run(tt.name+"/"+s.name, func(t *testing.T) {
				addr := fakeServer(t, tt.handle)
				cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
				_, err := s.send(cl, t.Context())
				var me *echo.MismatchError
				if !errors.As(err, &me) {
					t.Fatalf("error = %v (%T), want a *MismatchError", err, err)
				}
				if *me != tt.want {
					t.Errorf("MismatchError = %+v, want %+v", *me, tt.want)
				}
				if err.Error() != tt.msg {
					t.Errorf("error text = %q, want %q", err.Error(), tt.msg)
				}
			})
		}
	}
}

// TestClientSendServerWritesFirst: a server that writes first (a
// greeting, to a client that does not expect one) differs from Send's
// first message at byte 0, however soon its bytes come: Send knows its
// first message before it connects.
func TestClientSendServerWritesFirst(t *testing.T) {
	addr := fakeServer(t, func(c *net.TCPConn, _ <-chan struct{}) {
		c.Write([]byte("backend-2\n"))
		readUntilEOF(c)
	})
	cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
	want := echo.MismatchError{Offset: 0, Sent: 'T', Received: 'b'}
	for range 20 { // the greeting races the client's first write
		_, err := cl.Send(t.Context(), seedMessages, nil)
		var me *echo.MismatchError
		if !errors.As(err, &me) || *me != want {
			t.Fatalf("error = %v, want %v", err, &want)
		}
	}
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c *net.TCPConn, stop <-chan struct{}) { <-stop })
	cl := &echo.Client{Addr: addr, Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := cl.Send(t.Context(), seedMessages, nil)
	elapsed := time.Since(start)
	var ee *echo.ExchangeError
	if !errors.As(err, &ee) {
		t.Fatalf("error = %v (%T), want an *ExchangeError", err, err)
	}
	if want := "echo " + addr + ": i/o timeout"; err.Error() != want {
		t.Errorf("error text = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("Send with a 300ms timeout returned after %v", elapsed)
	}
}

func TestClientContextCanceled(t *testing.T) {
	addr := fakeServer(t, func(c *net.TCPConn, stop <-chan struct{}) { <-stop })
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	cl := &echo.Client{Addr: addr}
	_, err := cl.Send(ctx, seedMessages, nil)
	var ee *echo.ExchangeError
	if !errors.As(err, &ee) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v (%T), want an *ExchangeError wrapping context.Canceled", err, err)
	}
}

// TestClientClosedBeforeEcho: a server that closes or resets the
// connection before echoing a byte (as a full server does: serve
// --max-conns) is a network failure wrapping ErrClosedBeforeEcho, never a
// *MismatchError, however the race between the client's reader and writer
// turns out; so each case runs a few rounds. The client's log ends with
// "closing" once its goroutines are done: no line comes after it.
func TestClientClosedBeforeEcho(t *testing.T) {
	const rounds = 10
	tests := []struct {
		name   string
		handle func(c *net.TCPConn, stop <-chan struct{})
		reset  bool // the error wraps ECONNRESET too
	}{
		{"accept and close", func(c *net.TCPConn, _ <-chan struct{}) {}, false},
		// A reset right at accept may fail the dial already: reset once
		// the connection is in use.
		{"read a byte then reset", func(c *net.TCPConn, _ <-chan struct{}) {
			c.SetReadDeadline(time.Now().Add(ioTimeout))
			c.Read(make([]byte, 1))
			c.SetLinger(0)
		}, false},
		{"read all then close", func(c *net.TCPConn, _ <-chan struct{}) { readUntilEOF(c) }, false},
		{"read all then reset", func(c *net.TCPConn, _ <-chan struct{}) {
			readUntilEOF(c)
			c.SetLinger(0)
		}, true},
	}
	senders := []struct {
		name string
		send func(c *echo.Client, ctx context.Context) (echo.Result, error)
	}{
		{"Send", func(c *echo.Client, ctx context.Context) (echo.Result, error) {
			return c.Send(ctx, seedMessages, nil)
		}},
		{"SendStream", func(c *echo.Client, ctx context.Context) (echo.Result, error) {
			return c.SendStream(ctx, strings.NewReader(seedEcho), nil)
		}},
	}
	for _, tt := range tests {
		for _, s := range senders {
			t.Run(tt.name+"/"+s.name, func(t *testing.T) {
				addr := fakeServer(t, tt.handle)
				want := "echo " + addr + ": server closed the connection before echoing anything"
				for range rounds {
					idle := goleak.IgnoreCurrent()
					var logs syncBuffer
					cl := &echo.Client{Addr: addr, Timeout: ioTimeout, Logger: debugLogger(&logs)}
					res, err := s.send(cl, t.Context())
					var ee *echo.ExchangeError
					if !errors.As(err, &ee) || !errors.Is(err, echo.ErrClosedBeforeEcho) {
						t.Fatalf("error = %v (%T), want an *ExchangeError wrapping ErrClosedBeforeEcho", err, err)
					}
					if errors.As(err, new(*echo.MismatchError)) {
						t.Fatalf("error %v is a *MismatchError", err)
					}
					if err.Error() != want {
						t.Errorf("error text = %q, want %q", err.Error(), want)
					}
					if tt.reset && !errors.Is(err, syscall.ECONNRESET) {
						t.Errorf("error %v does not wrap ECONNRESET", err)
					}
					if res.Received != 0 {
						t.Errorf("Received = %d, want 0", res.Received)
					}
					// The client's goroutines and the server's handler end.
					goleak.VerifyNone(t, idle)
					lines := parseLog(t, logs.String())
					if len(lines) == 0 || lines[len(lines)-1].Message != "closing" {
						t.Fatalf("the log does not end with %q:\n%s", "closing", logs.String())
					}
				}
			})
		}
	}
}

// TestClientResetAfterSomeEcho: a reset after part of the echo came back
// stays a network error naming the reset and how much was echoed.
func TestClientResetAfterSomeEcho(t *testing.T) {
	echoed := make(chan struct{}) // the client has the 10 bytes
	addr := fakeServer(t, func(c *net.TCPConn, stop <-chan struct{}) {
		b := readUntilEOF(c)
		c.Write(b[:10])
		select {
		case <-echoed:
			c.SetLinger(0)
		case <-stop:
		}
	})
	cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
	got := 0
	res, err := cl.Send(t.Context(), seedMessages, writerFunc(func(p []byte) (int, error) {
		if got < 10 && got+len(p) >= 10 {
			close(echoed)
		}
		got += len(p)
		return len(p), nil
	}))
	var ee *echo.ExchangeError
	if !errors.As(err, &ee) || !errors.Is(err, syscall.ECONNRESET) || errors.Is(err, echo.ErrClosedBeforeEcho) {
		t.Fatalf("error = %v (%T), want an *ExchangeError wrapping ECONNRESET only", err, err)
	}
	if want := "echo " + addr + ": connection reset by the server after 10 of 46 bytes echoed"; err.Error() != want {
		t.Errorf("error text = %q, want %q", err.Error(), want)
	}
	if res.Received != 10 {
		t.Errorf("Received = %d, want 10", res.Received)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type failingWriter struct{ err error }

func (w failingWriter) Write(p []byte) (int, error) { return 0, w.err }

// TestClientEchoWriterFails: a failing echo writer (a full disk behind
// standard output) is an *OutputError, not a network error, over TCP and
// UDP alike.
func TestClientEchoWriterFails(t *testing.T) {
	errWrite := errors.New("disk full")
	tcp := echotest.NewServer(t, nil)
	udp, _ := servePacketLocal(t, &echo.Server{}, "udp4", "127.0.0.1:0")
	tests := []struct {
		name string
		send func(ctx context.Context, w io.Writer) (echo.Result, error)
	}{
		{"Send", func(ctx context.Context, w io.Writer) (echo.Result, error) {
			return tcp.Client().Send(ctx, seedMessages, w)
		}},
		{"SendStream", func(ctx context.Context, w io.Writer) (echo.Result, error) {
			return tcp.Client().SendStream(ctx, strings.NewReader(seedEcho), w)
		}},
		{"SendPackets", func(ctx context.Context, w io.Writer) (echo.Result, error) {
			cl := &echo.Client{Addr: "udp://" + udp, Timeout: ioTimeout}
			return cl.SendPackets(ctx, seedMessages, w)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.send(t.Context(), failingWriter{errWrite})
			var oe *echo.OutputError
			if !errors.As(err, &oe) || !errors.Is(err, errWrite) {
				t.Fatalf("error = %v (%T), want an *OutputError wrapping the echo writer's error", err, err)
			}
			if errors.As(err, new(*echo.ExchangeError)) || errors.As(err, new(*echo.DatagramError)) {
				t.Errorf("error %v (%T) is reported as a network error", err, err)
			}
			if want := "write echo: disk full"; err.Error() != want {
				t.Errorf("error text = %q, want %q", err.Error(), want)
			}
		})
	}
}

// stalledWriter takes its first write only once the exchange's time has
// run out: a reader of standard output that does not keep up.
type stalledWriter struct{ until <-chan struct{} }

func (w stalledWriter) Write(p []byte) (int, error) {
	<-w.until
	return len(p), nil
}

// TestClientEchoWriterStalls: when Timeout runs out while the echo is
// being written out, the error is the output's (*OutputError), not the
// server's ("i/o timeout").
func TestClientEchoWriterStalls(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	const timeout = time.Second
	cl := srv.Client()
	cl.Timeout = timeout
	expired := make(chan struct{})
	timer := time.AfterFunc(timeout+300*time.Millisecond, func() { close(expired) })
	defer timer.Stop()
	_, err := cl.Send(t.Context(), seedMessages, stalledWriter{expired})
	var oe *echo.OutputError
	if !errors.As(err, &oe) || errors.As(err, new(*echo.ExchangeError)) || !strings.Contains(err.Error(), "the 1s timeout ran out while the echo was being written out") {
		t.Fatalf("error = %v (%T), want an *OutputError that says the timeout ran out while writing the echo out", err, err)
	}
}

// TestClientTLSToPlainServer: a tls:// address served by a plain echo
// server gets the ClientHello back, which the client says in those words;
// other handshake failures do not.
func TestClientTLSToPlainServer(t *testing.T) {
	fx := newTLSFixture(t)
	plain := echotest.NewServer(t, nil).Addr
	tlsAddr := serveTLS(t, &echo.Server{}, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}})
	httpish := fakeServer(t, func(c *net.TCPConn, _ <-chan struct{}) {
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		c.Read(make([]byte, 1024))
		c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
	})
	closes := fakeServer(t, func(c *net.TCPConn, _ <-chan struct{}) {})
	// Reads the ClientHello's record whole, then closes: an EOF, not a
	// reset for bytes left unread.
	readsHello := fakeServer(t, func(c *net.TCPConn, _ <-chan struct{}) {
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		var header [5]byte
		if _, err := io.ReadFull(c, header[:]); err == nil {
			io.ReadFull(c, make([]byte, int(header[3])<<8|int(header[4])))
		}
	})
	tests := []struct {
		name   string
		addr   string
		notTLS bool
		want   string // the error's text after "connect ADDR: ", if checked
	}{
		{"plain echo server", "tls://" + plain, true, "server does not speak TLS (it echoed the ClientHello)"},
		{"TLS server with an unknown CA", tlsAddr, false, ""},
		{"server that answers HTTP", "tls://" + httpish, false, ""},
		{"server that closes", "tls://" + closes, false, ""},
		{"server that closes after the ClientHello", "tls://" + readsHello, false, "the server closed the connection during the TLS handshake: EOF"},
	}
	for _, tt := range tests {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tt.name+"/"+tls.VersionName(version), func(t *testing.T) {
				cl := &echo.Client{Addr: tt.addr, Timeout: ioTimeout, TLSConfig: &tls.Config{RootCAs: x509.NewCertPool(), MaxVersion: version}}
				_, err := cl.Send(t.Context(), seedMessages, nil)
				var de *echo.DialError
				if !errors.As(err, &de) {
					t.Fatalf("error = %v (%T), want a *DialError", err, err)
				}
				if got := errors.Is(err, echo.ErrNotTLS); got != tt.notTLS {
					t.Fatalf("error %q: wraps ErrNotTLS = %v, want %v", err, got, tt.notTLS)
				}
				if tt.want == "" {
					return
				}
				if want := "connect " + tt.addr + ": " + tt.want; err.Error() != want {
					t.Errorf("error text = %q, want %q", err.Error(), want)
				}
			})
		}
	}
}

// deadAddr returns an address on 127.0.0.1 where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestClientEmptyHostIsLocalhost: an address with no host (":PORT",
// "udp://:PORT") connects to localhost, and its errors say so, as its
// log line does ("connecting to localhost port PORT"); they named ":PORT".
func TestClientEmptyHostIsLocalhost(t *testing.T) {
	_, port, err := net.SplitHostPort(deadAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ addr, want string }{
		{":" + port, "connect localhost:" + port + ": "},
		{"tcp://:" + port, "connect tcp://localhost:" + port + ": "},
	} {
		res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {netip.MustParseAddr("127.0.0.1")}}}
		cl := &echo.Client{Addr: tt.addr, Timeout: ioTimeout, Resolver: res}
		_, err := cl.Send(t.Context(), seedMessages, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to start %q", tt.addr, err, tt.want)
		}
	}
}

func TestClientConnectionRefused(t *testing.T) {
	addr := deadAddr(t)
	cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
	for name, send := range map[string]func() (echo.Result, error){
		"Send":       func() (echo.Result, error) { return cl.Send(t.Context(), seedMessages, nil) },
		"SendStream": func() (echo.Result, error) { return cl.SendStream(t.Context(), strings.NewReader("x"), nil) },
	} {
		t.Run(name, func(t *testing.T) {
			res, err := send()
			var de *echo.DialError
			if !errors.As(err, &de) {
				t.Fatalf("error = %v (%T), want a *DialError", err, err)
			}
			if want := "connect " + addr + ": connection refused"; err.Error() != want {
				t.Errorf("error text = %q, want %q", err.Error(), want)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("error %v does not wrap ECONNREFUSED", err)
			}
			if res != (echo.Result{}) {
				t.Errorf("Result = %+v, want zero", res)
			}
		})
	}
}

// portFreeOnIPv6 reports whether nothing listens on [::1]:port.
func portFreeOnIPv6(port int) bool {
	ln, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// attempts records the address of every connection attempt a Dialer makes.
type attempts struct {
	mu    sync.Mutex
	addrs []string
}

func (a *attempts) control(ctx context.Context, network, address string, c syscall.RawConn) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addrs = append(a.addrs, address)
	return nil
}

func (a *attempts) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.addrs...)
}

func TestClientDialTriesEachAddress(t *testing.T) {
	requireIPv6(t)
	ts := echotest.NewServer(t, nil)
	port := portOf(t, mustResolve(t, ts.Addr))
	if !portFreeOnIPv6(port) {
		t.Skipf("something listens on [::1]:%d", port)
	}
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {loopback6, loopback4}}}
	var tried attempts
	cl := &echo.Client{
		Addr:     net.JoinHostPort("localhost", strconv.Itoa(port)),
		Resolver: res,
		Timeout:  ioTimeout,
		Dialer:   net.Dialer{ControlContext: tried.control},
	}
	var got bytes.Buffer
	if _, err := cl.Send(t.Context(), seedMessages, &got); err != nil {
		t.Fatal(err)
	}
	if got.String() != seedEcho {
		t.Errorf("echo = %q, want %q", got.String(), seedEcho)
	}
	want := []string{fmt.Sprintf("[::1]:%d", port), fmt.Sprintf("127.0.0.1:%d", port)}
	if got := tried.list(); !slices.Equal(got, want) {
		t.Errorf("dialled %q, want %q", got, want)
	}
	if got := res.asked(); !slices.Equal(got, []string{"localhost"}) {
		t.Errorf("resolver asked for %q, want [localhost]", got)
	}
}

func TestClientDialAllAddressesFail(t *testing.T) {
	requireIPv6(t)
	addr := deadAddr(t)
	port := portOf(t, mustResolve(t, addr))
	if !portFreeOnIPv6(port) {
		t.Skipf("something listens on [::1]:%d", port)
	}
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {loopback6, loopback4}}}
	var tried attempts
	cl := &echo.Client{
		Addr:     net.JoinHostPort("localhost", strconv.Itoa(port)),
		Resolver: res,
		Timeout:  ioTimeout,
		Dialer:   net.Dialer{ControlContext: tried.control},
	}
	_, err := cl.Send(t.Context(), seedMessages, nil)
	var de *echo.DialError
	if !errors.As(err, &de) {
		t.Fatalf("error = %v (%T), want a *DialError", err, err)
	}
	if want := fmt.Sprintf("connect localhost:%d: connection refused", port); err.Error() != want {
		t.Errorf("error text = %q, want %q", err.Error(), want)
	}
	if n := len(tried.list()); n != 2 {
		t.Errorf("%d connection attempts (%q), want 2", n, tried.list())
	}
}

func TestClientDialHosts(t *testing.T) {
	ts := echotest.NewServer(t, nil)
	port := strconv.Itoa(portOf(t, mustResolve(t, ts.Addr)))
	tests := []struct {
		name   string
		addr   string
		asked  []string
		logged string // the first log line
	}{
		{"IP literal skips the resolver", "127.0.0.1:" + port, nil, "connecting to 127.0.0.1 port " + port},
		{"empty host means localhost", ":" + port, []string{"localhost"}, "connecting to localhost port " + port},
		{"host name", "echo.test:" + port, []string{"echo.test"}, "connecting to echo.test port " + port},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &fakeResolver{addrs: map[string][]netip.Addr{
				"localhost": {loopback4},
				"echo.test": {loopback4},
			}}
			var logs syncBuffer
			cl := &echo.Client{Addr: tt.addr, Resolver: res, Timeout: ioTimeout, Logger: debugLogger(&logs)}
			if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
				t.Fatal(err)
			}
			if got := res.asked(); !slices.Equal(got, tt.asked) {
				t.Errorf("resolver asked for %q, want %q", got, tt.asked)
			}
			if lines := parseLog(t, logs.String()); len(lines) == 0 || lines[0].Message != tt.logged {
				t.Errorf("first log line of %s:\n%s\nwant %q", tt.addr, logs.String(), tt.logged)
			}
		})
	}
}

func TestClientResolveErrors(t *testing.T) {
	errLookup := errors.New("lookup failed")
	tests := []struct {
		name   string
		res    *fakeResolver
		target error
		text   string
	}{
		{"resolver error", &fakeResolver{err: errLookup}, errLookup, "lookup failed"},
		{"no addresses", &fakeResolver{addrs: map[string][]netip.Addr{"echo.test": {}}}, nil, "no addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := &echo.Client{Addr: "echo.test:7", Resolver: tt.res, Timeout: ioTimeout}
			_, err := cl.Send(t.Context(), seedMessages, nil)
			var de *echo.DialError
			if !errors.As(err, &de) {
				t.Fatalf("error = %v (%T), want a *DialError", err, err)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %v does not wrap %v", err, tt.target)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.HasPrefix(err.Error(), "connect echo.test:7: ") {
				t.Errorf("error text = %q, want connect echo.test:7: ...%s", err.Error(), tt.text)
			}
		})
	}
}

func TestClientInvalidAddr(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:70000", "127.0.0.1", "127.0.0.1:x", "[::1"} {
		t.Run(addr, func(t *testing.T) {
			res := &fakeResolver{}
			cl := &echo.Client{Addr: addr, Resolver: res, Timeout: ioTimeout}
			if _, err := cl.Send(t.Context(), seedMessages, nil); err == nil {
				t.Fatal("Send succeeded")
			}
			if got := res.asked(); len(got) != 0 {
				t.Errorf("resolver asked for %q with an invalid address", got)
			}
		})
	}
}

func TestClientLogs(t *testing.T) {
	ts := echotest.NewServer(t, nil)
	port := portOf(t, mustResolve(t, ts.Addr))
	var logs syncBuffer
	cl := &echo.Client{Addr: ts.Addr, Timeout: ioTimeout, Logger: debugLogger(&logs)}
	if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
		t.Fatal(err)
	}

	lines := parseLog(t, logs.String())
	var sending, received []string
	var order []string
	for _, l := range lines {
		if l.Logger != "echo_client" {
			t.Errorf("line from logger %q, want echo_client: %+v", l.Logger, l)
		}
		switch {
		case strings.HasPrefix(l.Message, "sending "):
			sending = append(sending, l.Message)
			order = append(order, "sending")
		case strings.HasPrefix(l.Message, "received "):
			b, err := unquote(strings.TrimPrefix(l.Message, "received "))
			if err != nil {
				t.Fatal(err)
			}
			if l.Level != "debug" || l.Bytes == nil || *l.Bytes != len(b) {
				t.Errorf("received line %+v: want debug level and bytes %d", l, len(b))
			}
			received = append(received, string(b))
		default:
			if l.Level != "info" {
				t.Errorf("line %q at level %s, want info", l.Message, l.Level)
			}
			order = append(order, l.Message)
		}
	}
	wantSending := []string{`sending b'This is the message. '`, `sending b'It will be sent '`, `sending b'in parts.'`}
	if !slices.Equal(sending, wantSending) {
		t.Errorf("sending lines = %q, want %q", sending, wantSending)
	}
	if got := strings.Join(received, ""); got != seedEcho {
		t.Errorf("received lines add up to %q, want %q", got, seedEcho)
	}
	wantOrder := []string{fmt.Sprintf("connecting to 127.0.0.1 port %d", port), "sending", "sending", "sending", "waiting for response", "closing"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("log order = %q, want %q", order, wantOrder)
	}
}

func mustResolve(t *testing.T, addr string) *net.TCPAddr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestClientSendStreamServerEndsFirst: while the input waits for more
// (stdin a person types into), a server that closes, or that sends bytes
// nothing sent, ends the exchange at once with what it did: not at the
// timeout, and not when the input ends.
func TestClientSendStreamServerEndsFirst(t *testing.T) {
	tests := []struct {
		name   string
		handle func(c *net.TCPConn, stop <-chan struct{})
		want   func(err error) bool
		says   string
	}{
		{"closes at once", func(c *net.TCPConn, _ <-chan struct{}) {},
			func(err error) bool { return errors.Is(err, echo.ErrClosedBeforeEcho) }, "closed before echoing anything"},
		{"echoes, then closes", func(c *net.TCPConn, _ <-chan struct{}) {
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err == nil {
				c.Write(buf)
			}
		}, func(err error) bool {
			var me *echo.MismatchError
			return errors.As(err, &me) && me.Short && me.Offset == 5
		}, "a short echo"},
		{"sends unasked", func(c *net.TCPConn, stop <-chan struct{}) {
			c.Write([]byte("unasked"))
			<-stop
		}, func(err error) bool {
			var me *echo.MismatchError
			return errors.As(err, &me) && me.Extra && me.Offset == 0
		}, "bytes beyond what was sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeServer(t, tt.handle)
			cl := &echo.Client{Addr: addr, Timeout: ioTimeout} // reached only if it waits for the input
			in, feed := io.Pipe()
			t.Cleanup(func() { feed.Close() })
			if tt.says == "a short echo" {
				go feed.Write([]byte("hello")) // then nothing more, and no end
			}
			_, err := cl.SendStream(t.Context(), in, nil)
			if !tt.want(err) {
				t.Errorf("SendStream = %v, want %s", err, tt.says)
			}
		})
	}
}

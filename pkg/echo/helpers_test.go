package echo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

// ioTimeout bounds every blocking network step in these tests, so that a
// broken server fails a test instead of hanging it.
const ioTimeout = 10 * time.Second

// seedMessages are the seed client's MESSAGES.
var seedMessages = [][]byte{
	[]byte("This is the message. "),
	[]byte("It will be sent "),
	[]byte("in parts."),
}

const seedEcho = "This is the message. It will be sent in parts."

// randomBytes returns n bytes from a generator seeded with seed, so that
// failures reproduce.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b
}

// syncBuffer collects log output; zerolog may write to it from several
// goroutines at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLine is one JSON log line with the fields the server and client write.
type logLine struct {
	Level     string   `json:"level"`
	Logger    string   `json:"logger"`
	Message   string   `json:"message"`
	Peer      string   `json:"peer"`
	Bytes     *int     `json:"bytes"`
	Listeners []string `json:"listeners"`
	Error     string   `json:"error"`
	Reason    string   `json:"reason"`
	// Unlogged is a rate-limited line's count of lines held back.
	Unlogged int `json:"refused_unlogged"`
}

// parseLog decodes every line of a zerolog JSON transcript.
func parseLog(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	for l := range strings.Lines(out) {
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, ll)
	}
	return lines
}

func debugLogger(w io.Writer) zerolog.Logger { return zerolog.New(w).Level(zerolog.DebugLevel) }

// A variant is one way of running the server. The server reads differently
// when it logs every chunk (BufferSize-sized reads, the seed's loop) than
// when it does not (large pooled reads), and again when its connections do
// not expose a file descriptor; echo tests run against each.
// listen opens a loopback listener for v (see wrap).
func (v variant) listen(t *testing.T) net.Listener {
	t.Helper()
	return v.wrap(listenLocal(t))
}

// wrap returns ln, wrapped when v is opaque so that its connections hide
// their file descriptor.
func (v variant) wrap(ln net.Listener) net.Listener { return hideFDs(ln, v.opaque) }

// hideFDs returns ln wrapped in an opaqueListener if hide is set, else ln.
func hideFDs(ln net.Listener, hide bool) net.Listener {
	if hide {
		return opaqueListener{ln}
	}
	return ln
}

type variant struct {
	name string
	// server returns the server to run, logging to w: at debug level for
	// the logged variants, at info level for the others (a nil w means the
	// zero Logger).
	server func(w io.Writer) *echo.Server
	// opaque serves through a listener whose connections hide their
	// file descriptor (as TLS or a wrapper would).
	opaque bool
	// bulk is how much a bulk-transfer test sends through this variant:
	// the logged ones format every chunk and are too slow for megabytes.
	bulk int
}

func quietServer(w io.Writer) *echo.Server {
	if w == nil {
		return &echo.Server{}
	}
	return &echo.Server{Logger: zerolog.New(w).Level(zerolog.InfoLevel)}
}

func loggedServer(bufferSize int) func(w io.Writer) *echo.Server {
	return func(w io.Writer) *echo.Server {
		if w == nil {
			w = io.Discard
		}
		return &echo.Server{BufferSize: bufferSize, Logger: debugLogger(w)}
	}
}

// goroutineServer is quietServer served with a goroutine per connection
// where event loops would serve it (Linux; loop_linux.go).
func goroutineServer(w io.Writer) *echo.Server { return echo.WithoutLoops(quietServer(w)) }

// loggedGoroutineServer is loggedServer(0) served with a goroutine per
// connection where event loops would serve it.
func loggedGoroutineServer(w io.Writer) *echo.Server { return echo.WithoutLoops(loggedServer(0)(w)) }

// busyPollServer is quietServer with its event loops polling for 1ms
// after each event before they sleep (Server.BusyPoll).
func busyPollServer(w io.Writer) *echo.Server {
	s := quietServer(w)
	s.BusyPoll = time.Millisecond
	return s
}

var variants = []variant{
	{name: "quiet", server: quietServer, bulk: 10 << 20},
	{name: "quiet goroutines", server: goroutineServer, bulk: 10 << 20},
	{name: "quiet busy-polling", server: busyPollServer, bulk: 10 << 20},
	{name: "debug logged", server: loggedServer(0), bulk: 512 << 10},
	{name: "debug logged BufferSize 7", server: loggedServer(7), bulk: 128 << 10},
	{name: "debug logged goroutines", server: loggedGoroutineServer, bulk: 512 << 10},
	{name: "opaque conns", server: quietServer, opaque: true, bulk: 2 << 20},
}

// small reports whether this variant is too slow for megabytes.
func (v variant) small() bool { return v.bulk < 1<<20 }

// start runs a server of this variant, logging to w, for the test.
func (v variant) start(t *testing.T, w io.Writer) (addr string, srv *echo.Server) {
	t.Helper()
	srv = v.server(w)
	if !v.opaque {
		return echotest.NewServer(t, srv).Addr, srv
	}
	ln := listenLocal(t)
	serve(t, srv, opaqueListener{ln})
	return ln.Addr().String(), srv
}

// opaqueListener hands out connections that offer only net.Conn and
// CloseWrite, hiding *net.TCPConn's SyscallConn.
type opaqueListener struct{ net.Listener }

func (l opaqueListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return opaqueConn{c}, nil
}

type opaqueConn struct{ net.Conn }

func (c opaqueConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// listenLocal listens on a port the kernel picks on 127.0.0.1.
func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serving is a Serve call running in the background.
type serving struct {
	done chan struct{}
	err  error
}

// wait returns Serve's result, failing the test if Serve is still running
// after d.
func (s *serving) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(d):
		t.Fatalf("Serve still running after %v", d)
		return nil
	}
}

// serve runs srv.Serve(ln) until the test ends, when it closes srv. Tests
// use it instead of echotest when they need Serve's result.
func serve(t *testing.T, srv *echo.Server, ln net.Listener) *serving {
	t.Helper()
	s := &serving{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-s.done:
		case <-time.After(ioTimeout):
			t.Errorf("Serve did not return after Close")
		}
	})
	return s
}

// dial connects to addr over TCP and closes the connection when the test
// ends.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// readAll reads c until end of stream, failing after ioTimeout.
func readAll(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	return io.ReadAll(c)
}

// roundTrip writes p and reads its echo, proving the server is serving c.
func roundTrip(t *testing.T, c net.Conn, p []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(p))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p) {
		t.Fatalf("echo = %q, want %q", got, p)
	}
}

// waitRefused polls until addr refuses connections, the sign that a server
// has closed its listener.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections after %v", addr, ioTimeout)
}

// shutdown calls srv.Shutdown with a context that ends after d.
func shutdown(srv *echo.Server, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return srv.Shutdown(ctx)
}

// fakeResolver answers LookupNetIP from a table, recording the hosts asked.
type fakeResolver struct {
	addrs map[string][]netip.Addr
	err   error

	mu    sync.Mutex
	hosts []string
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.hosts = append(r.hosts, host)
	r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	ips, ok := r.addrs[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func (r *fakeResolver) asked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.hosts...)
}

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.MustParseAddr("::1")
)

// requireIPv6 skips the test when the loopback interface has no ::1.
func requireIPv6(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
}

// portOf returns the port of a listener or connection address.
func portOf(t *testing.T, a net.Addr) int {
	t.Helper()
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		t.Fatalf("%v is a %T, not a *net.TCPAddr", a, a)
	}
	return ta.Port
}

// isReset reports whether err is a connection reset.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

package echo_test

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/rs/zerolog"
)

// recorder is an echo.Observer that counts what it is told.
type recorder struct {
	accepted     atomic.Int64
	acceptErrors atomic.Int64
	received     atomic.Int64
	sent         atomic.Int64
	chunks       atomic.Int64 // Sent calls with a latency
	badLatency   atomic.Int64 // latencies that make no sense
	doubleClose  atomic.Int64 // Closed called twice on one connection
	afterClose   atomic.Int64 // events after Closed

	mu        sync.Mutex
	closed    map[echo.CloseReason]int
	listening map[string]int // +1 on start, -1 on stop
	changed   chan struct{}  // signalled on every Closed
}

func newRecorder() *recorder {
	return &recorder{closed: map[echo.CloseReason]int{}, listening: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) Listening(listener string, accepting bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if accepting {
		r.listening[listener]++
	} else {
		r.listening[listener]--
	}
}

func (r *recorder) AcceptError(string, error) { r.acceptErrors.Add(1) }

func (r *recorder) ConnAccepted(string, net.Addr) echo.ConnObserver {
	r.accepted.Add(1)
	return &connRecorder{r: r}
}

// closedCount returns how many connections closed for reason.
func (r *recorder) closedCount(reason echo.CloseReason) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed[reason]
}

func (r *recorder) totalClosed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.closed {
		n += c
	}
	return n
}

// waitClosed waits until n connections have closed for reason.
func (r *recorder) waitClosed(t *testing.T, reason echo.CloseReason, n int) {
	t.Helper()
	deadline := time.After(ioTimeout)
	for r.closedCount(reason) < n {
		select {
		case <-r.changed:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waited %v for %d connections closed with reason %s; closed: %v", ioTimeout, n, reason, r.closed)
		}
	}
}

type connRecorder struct {
	r      *recorder
	closed atomic.Bool
}

func (c *connRecorder) Received(n int) {
	if c.closed.Load() {
		c.r.afterClose.Add(1)
	}
	c.r.received.Add(int64(n))
}

func (c *connRecorder) Sent(n int, latency time.Duration) {
	if c.closed.Load() {
		c.r.afterClose.Add(1)
	}
	c.r.sent.Add(int64(n))
	if latency >= 0 {
		c.r.chunks.Add(1)
		if latency > time.Minute {
			c.r.badLatency.Add(1)
		}
	}
}

func (c *connRecorder) Closed(reason echo.CloseReason) {
	if c.closed.Swap(true) {
		c.r.doubleClose.Add(1)
	}
	c.r.mu.Lock()
	c.r.closed[reason]++
	c.r.mu.Unlock()
	select {
	case c.r.changed <- struct{}{}:
	default:
	}
}

// check fails the test if the recorder saw events out of order.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	if n := r.doubleClose.Load(); n > 0 {
		t.Errorf("Closed called twice on %d connections", n)
	}
	if n := r.afterClose.Load(); n > 0 {
		t.Errorf("%d events after Closed", n)
	}
	if n := r.badLatency.Load(); n > 0 {
		t.Errorf("%d latencies over a minute", n)
	}
}

func TestCloseReasonString(t *testing.T) {
	want := []string{"eof", "idle", "write-timeout", "reset", "limit", "denied", "shutdown", "error", "proxy", "fault"}
	got := echo.CloseReasons()
	if len(got) != len(want) {
		t.Fatalf("CloseReasons() has %d reasons, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.String() != want[i] {
			t.Errorf("CloseReasons()[%d].String() = %q, want %q", i, r, want[i])
		}
	}
	if s := echo.CloseReason(200).String(); s != "error" {
		t.Errorf("CloseReason(200).String() = %q, want error", s)
	}
}

// TestObserverCountsEcho: every byte is reported received and sent, each
// chunk with a latency, and each connection closes once with its reason,
// on every echo path.
func TestObserverCountsEcho(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			rec := newRecorder()
			srv := v.server(nil)
			srv.Observer = rec
			ln := v.listen(t)
			sv := serve(t, srv, ln)
			addr := ln.Addr().String()

			data := randomBytes(11, 20000)
			const clients = 3
			for range clients {
				cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
				if _, err := cl.Send(t.Context(), [][]byte{data[:7000], data[7000:]}, nil); err != nil {
					t.Fatal(err)
				}
			}
			rec.waitClosed(t, echo.CloseEOF, clients)
			if got := rec.accepted.Load(); got != clients {
				t.Errorf("ConnAccepted called %d times, want %d", got, clients)
			}
			want := int64(clients * len(data))
			if got := rec.received.Load(); got != want {
				t.Errorf("received %d bytes, want %d", got, want)
			}
			if got := rec.sent.Load(); got != want {
				t.Errorf("sent %d bytes, want %d", got, want)
			}
			if rec.chunks.Load() < clients {
				t.Errorf("%d chunks with a latency, want at least %d", rec.chunks.Load(), clients)
			}
			rec.mu.Lock()
			if rec.listening[addr] != 1 {
				t.Errorf("Listening(%s): net %d starts, want 1 while serving", addr, rec.listening[addr])
			}
			rec.mu.Unlock()
			if err := shutdown(srv, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			sv.wait(t, ioTimeout) // Serve reports the stop as it returns
			rec.mu.Lock()
			if rec.listening[addr] != 0 {
				t.Errorf("Listening(%s): net %d starts after Shutdown, want 0", addr, rec.listening[addr])
			}
			rec.mu.Unlock()
			rec.check(t)
		})
	}
}

// TestObserverShutdownReason: connections still open when Shutdown's
// context ends, or when Close is called, close with reason shutdown, and
// are all reported before Shutdown or Close returns.
func TestObserverShutdownReason(t *testing.T) {
	stops := []struct {
		name string
		stop func(*echo.Server) error
	}{
		{"Shutdown", func(s *echo.Server) error { shutdown(s, 100*time.Millisecond); return nil }},
		{"Close", (*echo.Server).Close},
	}
	for _, st := range stops {
		for _, v := range variants {
			t.Run(st.name+"/"+v.name, func(t *testing.T) {
				rec := newRecorder()
				srv := v.server(nil)
				srv.Observer = rec
				srv.IdleTimeout = time.Minute
				srv.WriteTimeout = time.Minute
				ln := v.listen(t)
				serve(t, srv, ln)
				c1 := dial(t, ln.Addr().String())
				c2 := dial(t, ln.Addr().String())
				roundTrip(t, c1, []byte("one"))
				roundTrip(t, c2, []byte("two"))
				if err := st.stop(srv); err != nil {
					t.Fatal(err)
				}
				if got := rec.closedCount(echo.CloseShutdown); got != 2 {
					t.Errorf("after %s returned, %d connections closed with reason shutdown, want 2 (closed: %v)", st.name, got, rec.closed)
				}
				rec.check(t)
			})
		}
	}
}

// startLineWriter is a log destination that, at the start-up line, notes
// how many sockets the Observer had been told are listening.
type startLineWriter struct {
	rec *recorder
	mu  sync.Mutex
	at  []int // listening sockets at each start-up line
}

func (w *startLineWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "starting up on") {
		w.rec.mu.Lock()
		n := 0
		for _, v := range w.rec.listening {
			n += v
		}
		w.rec.mu.Unlock()
		w.mu.Lock()
		w.at = append(w.at, n)
		w.mu.Unlock()
	}
	return len(p), nil
}

// TestStartLineAfterListening: whoever reads the start-up line (a
// supervisor, a test, /readyz through the Observer) finds every socket
// already served: ServeBound logs it only after each Serve and
// ServePacket has told the Observer.
func TestStartLineAfterListening(t *testing.T) {
	for range 20 {
		rec := newRecorder()
		w := &startLineWriter{rec: rec}
		srv := &echo.Server{Observer: rec, Logger: zerolog.New(w)}
		b, err := srv.Bind(t.Context(), "127.0.0.1:0", "udp://127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.ServeBound(b) }()
		if err := shutdownWhenLogged(w, srv); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, echo.ErrServerClosed) {
			t.Fatalf("ServeBound = %v, want ErrServerClosed", err)
		}
		w.mu.Lock()
		at := slices.Clone(w.at)
		w.mu.Unlock()
		if len(at) == 0 || slices.Max(at) != 2 || slices.Min(at) != 2 {
			t.Fatalf("listening sockets at each start-up line: %v, want 2 at every one", at)
		}
	}
}

// shutdownWhenLogged shuts srv down once w has seen a start-up line.
func shutdownWhenLogged(w *startLineWriter, srv *echo.Server) error {
	deadline := time.Now().Add(ioTimeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		n := len(w.at)
		w.mu.Unlock()
		if n > 0 {
			return shutdown(srv, ioTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("no start-up line logged")
}

func TestFaultKindString(t *testing.T) {
	want := []string{"delay", "rate", "slice", "close", "reset", "stall", "corrupt", "refuse", "drop", "duplicate", "reorder"}
	var got []string
	for _, k := range echo.FaultKinds() {
		got = append(got, k.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("FaultKinds() = %q, want %q", got, want)
	}
	if s := echo.FaultKind(200).String(); s != "unknown" {
		t.Errorf("an unknown kind is %q", s)
	}
}

func TestProxyResultString(t *testing.T) {
	want := []string{"proxy", "local", "absent", "malformed", "unsupported", "timeout", "untrusted"}
	var got []string
	for _, r := range echo.ProxyResults() {
		got = append(got, r.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("ProxyResults() = %q, want %q", got, want)
	}
	if s := echo.ProxyResult(200).String(); s != "unknown" {
		t.Errorf("an unknown result is %q", s)
	}
}

//go:build linux

package reliability

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// streamer streams pattern bytes on one connection while it reads the echo
// back and checks every byte.
type streamer struct {
	c      *net.TCPConn
	offset int64 // where in the pattern this connection's stream starts

	sent     atomic.Int64
	received atomic.Int64
	stop     chan struct{} // closed to make the writer half-close and stop
	wdone    chan struct{} // closed when the writer has stopped
	rdone    chan struct{} // closed when the reader has seen the end
	readMore chan struct{} // signalled after each read of the echo
	readErr  error         // why the reader stopped: nil is end of stream
	finished time.Time     // when the reader saw the end
}

// stream starts the writer and the reader of a new streamer.
func stream(t *testing.T, addr string, offset int64, chunk int, pause time.Duration) *streamer {
	t.Helper()
	st := &streamer{c: dialFrom(t, "", addr), offset: offset,
		stop: make(chan struct{}), wdone: make(chan struct{}), rdone: make(chan struct{}), readMore: make(chan struct{}, 1)}
	go st.write(chunk, pause)
	go st.read()
	return st
}

// waitReceived waits until the echo has brought back more than n bytes,
// failing the test if the stream ends first or the deadline passes.
func (st *streamer) waitReceived(t *testing.T, n int64, deadline <-chan time.Time) {
	t.Helper()
	for st.received.Load() <= n {
		select {
		case <-st.readMore:
		case <-st.rdone:
			if st.received.Load() <= n {
				t.Fatalf("stream ended (%v) with %d bytes echoed, want more than %d", st.readErr, st.received.Load(), n)
			}
		case <-deadline:
			t.Fatalf("%d bytes echoed, want more than %d", st.received.Load(), n)
		}
	}
}

func (st *streamer) write(chunk int, pause time.Duration) {
	defer close(st.wdone)
	buf := make([]byte, chunk)
	st.c.SetWriteDeadline(time.Now().Add(4 * ioTimeout))
	for {
		select {
		case <-st.stop:
			st.c.CloseWrite()
			return
		case <-st.rdone:
			return
		default:
		}
		p := patternAt(buf, st.offset+st.sent.Load())
		n, err := st.c.Write(p)
		st.sent.Add(int64(n))
		if err != nil {
			return
		}
		// Not a wait: the client under test sends a chunk every pause.
		time.Sleep(pause)
	}
}

func (st *streamer) read() {
	defer close(st.rdone)
	buf := make([]byte, 32<<10)
	want := make([]byte, 32<<10)
	st.c.SetReadDeadline(time.Now().Add(4 * ioTimeout))
	for {
		n, err := st.c.Read(buf)
		if n > 0 {
			got := st.received.Load()
			if !slices.Equal(buf[:n], patternAt(want[:0:n], st.offset+got)) {
				st.readErr = errors.New("echo differs from what was sent")
				return
			}
			st.received.Add(int64(n))
			select {
			case st.readMore <- struct{}{}:
			default:
			}
		}
		if errors.Is(err, io.EOF) {
			st.finished = time.Now()
			return
		}
		if err != nil {
			st.readErr = err
			return
		}
	}
}

// TestDrainUnderLoad: 200 connections stream both ways when the binary gets
// SIGTERM. /readyz turns 503 at once; the clients that half-close before
// the drain deadline get back every byte they sent and a clean close; the
// others are closed at the deadline with everything the server read echoed
// and a FIN, never a reset; the process exits 0.
func TestDrainUnderLoad(t *testing.T) {
	const (
		clients = 200
		closers = 150 // half-close during the drain; the rest stream on
		drain   = 4 * time.Second
		chunk   = 1024
		pause   = 10 * time.Millisecond
	)
	s := startServer(t, 0, "--shutdown-timeout", drain.String())
	if code, body := s.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %q before the drain, want 200", code, body)
	}
	streams := make([]*streamer, clients)
	for i := range streams {
		streams[i] = stream(t, s.addr, int64(i)*7919, chunk, pause)
	}
	t.Cleanup(func() {
		for _, st := range streams {
			st.c.Close()
			<-st.wdone
			<-st.rdone
		}
	})
	echoing := time.After(ioTimeout)
	for _, st := range streams {
		st.waitReceived(t, 0, echoing) // each gets an echo before the drain
	}

	sentBefore := make([]int64, clients)
	for i, st := range streams {
		sentBefore[i] = st.sent.Load()
	}
	term := time.Now()
	s.signal(t, syscall.SIGTERM)

	// Readiness goes first, before the server begins closing, while every
	// connection is still streaming.
	s.waitLog(t, "closing server", func(l logLine) bool { return l.Logger == "main" && l.Message == "closing server" })
	sentAtDrain := make([]int64, clients)
	for i, st := range streams {
		sentAtDrain[i] = st.sent.Load()
	}
	if code, _ := s.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d once the server logged 'closing server' (%v after SIGTERM), want 503", code, time.Since(term))
	}
	if code, _ := s.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while draining, want 200", code)
	}
	for i, st := range streams {
		select {
		case <-st.rdone:
			t.Fatalf("stream %d ended (%v) before the drain deadline, without half-closing", i, st.readErr)
		default:
		}
	}

	// They keep streaming after SIGTERM, each until it has the echo of
	// bytes sent after the server began closing; then most half-close.
	streaming := time.After(drain / 2)
	for i, st := range streams {
		st.waitReceived(t, sentAtDrain[i], streaming)
	}
	for _, st := range streams[:closers] {
		close(st.stop)
	}
	// What the others have sent shortly before the deadline must all come
	// back: the server echoes what reached it before the deadline, read or
	// not. (The margin covers the time from a write here to the server's
	// receive queue on a loaded machine.) Not a wait for an event: the
	// drain deadline under test sets when the sample is taken.
	time.Sleep(time.Until(term.Add(drain - 300*time.Millisecond)))
	sentNearDeadline := make([]int64, clients)
	for i, st := range streams[closers:] {
		sentNearDeadline[closers+i] = st.sent.Load()
	}
	for i, st := range streams {
		select {
		case <-st.rdone:
		case <-time.After(drain + 3*time.Second):
			t.Fatalf("stream %d: no end of stream %v after SIGTERM", i, time.Since(term))
		}
		<-st.wdone
		sent, got := st.sent.Load(), st.received.Load()
		if st.readErr != nil {
			t.Errorf("stream %d: %v after %d of %d bytes (reset: %v)", i, st.readErr, got, sent, isReset(st.readErr))
			continue
		}
		if i < closers {
			if got != sent {
				t.Errorf("stream %d half-closed during the drain: echo %d bytes of %d sent", i, got, sent)
			}
			if st.finished.Sub(term) >= drain {
				t.Errorf("stream %d half-closed during the drain but was closed only %v after SIGTERM", i, st.finished.Sub(term))
			}
			continue
		}
		if got < sentBefore[i] || got < sentNearDeadline[i] {
			t.Errorf("stream %d: echo %d bytes, fewer than the %d sent up to 300ms before the drain deadline (%d before SIGTERM)", i, got, sentNearDeadline[i], sentBefore[i])
		}
		if d := st.finished.Sub(term); d < drain-100*time.Millisecond {
			t.Errorf("stream %d streaming on was closed %v after SIGTERM, before the %v drain deadline", i, d, drain)
		}
	}
	if code := s.wait(t, drain+5*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0:\n%s", code, s.logs())
	}
	eof := s.countLogs(func(l logLine) bool { return l.Message == "closing" && l.Reason == "eof" })
	shut := s.countLogs(func(l logLine) bool { return l.Message == "closing" && l.Reason == "shutdown" })
	if eof != closers || shut != clients-closers {
		t.Errorf("closings logged: %d eof, %d shutdown; want %d and %d", eof, shut, closers, clients-closers)
	}
	var total int64
	for _, st := range streams {
		total += st.received.Load()
	}
	t.Logf("%d streams echoed %d MiB; drain took %v", clients, total>>20, time.Since(term).Round(time.Millisecond))
}

// TestNeverReadingClient: a client that writes and never reads is closed at
// --write-timeout, the server's memory stays flat meanwhile, and another
// client's round trips stay fast.
func TestNeverReadingClient(t *testing.T) {
	const wt = time.Second
	s := startServer(t, 0, "--write-timeout", wt.String())
	rssBefore, err := procStatus(s.pid(), "VmRSS")
	if err != nil {
		t.Fatal(err)
	}

	// A well-behaved client pings all along.
	ping := dialFrom(t, "", s.addr)
	roundTrip(t, ping, []byte("ping"))
	stopPing := make(chan struct{})
	var rtts []time.Duration
	var pingErr error
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		msg := []byte("ping: are you still there?")
		for {
			select {
			case <-stopPing:
				return
			case <-time.After(10 * time.Millisecond):
			}
			start := time.Now()
			if pingErr = tryRoundTrip(ping, msg); pingErr != nil {
				return
			}
			rtts = append(rtts, time.Since(start))
		}
	}()

	// The memory sampler.
	var maxRSS atomic.Int64
	maxRSS.Store(rssBefore)
	stopSample := make(chan struct{})
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		for {
			if rss, err := procStatus(s.pid(), "VmRSS"); err == nil && rss > maxRSS.Load() {
				maxRSS.Store(rss)
			}
			select {
			case <-stopSample:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	hog := dialFrom(t, "", s.addr)
	hog.SetWriteDeadline(time.Now().Add(ioTimeout))
	chunk := make([]byte, 64<<10)
	var written int64
	var lastWrite time.Time
	for {
		n, err := hog.Write(chunk)
		written += int64(n)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the server did not close a client that never reads within %v (wrote %d KiB)", ioTimeout, written>>10)
			}
			if !isReset(err) {
				t.Errorf("the never-reading client's write failed with %v, want a reset or broken pipe", err)
			}
			break
		}
		lastWrite = time.Now()
	}
	stalled := time.Since(lastWrite)
	close(stopPing)
	<-pingDone
	close(stopSample)
	<-sampleDone

	if stalled < wt/2 || stalled > wt+4*time.Second {
		t.Errorf("closed %v after the client's writes stalled, want about --write-timeout %v", stalled, wt)
	}
	s.waitMetric(t, "echoctl_connections_closed_total", "write-timeout", 1)
	// Waited for too: a scrape reads the gauge before the counter, so it
	// may find the connection counted closed and still active.
	s.waitMetric(t, "echoctl_connections_active", "", 1) // the pinger
	if grew := maxRSS.Load() - rssBefore; grew > 32<<10 {
		t.Errorf("server RSS grew by %d MiB while a client did not read (wrote %d MiB)", grew>>10, written>>20)
	}
	if pingErr != nil {
		t.Fatalf("the other client failed: %v", pingErr)
	}
	if len(rtts) < 10 {
		t.Fatalf("only %d pings in %v", len(rtts), stalled)
	}
	slices.Sort(rtts)
	p50, p99, worst := rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1]
	// Generous: a loopback round trip takes well under a millisecond; a
	// server stalled by the hog would take the whole write timeout.
	if worst > 500*time.Millisecond {
		t.Errorf("the other client's slowest round trip took %v while a client did not read", worst)
	}
	t.Logf("wrote %d KiB before the close; RSS %d -> max %d KiB; %d pings: p50 %v, p99 %v, max %v",
		written>>10, rssBefore, maxRSS.Load(), len(rtts), p50, p99, worst)
}

// TestIdleTimeoutMetric: an idle connection is closed at --idle-timeout and
// counted with reason idle.
func TestIdleTimeoutMetric(t *testing.T) {
	const idle = 300 * time.Millisecond
	s := startServer(t, 0, "--idle-timeout", idle.String())
	c := dialFrom(t, "", s.addr)
	roundTrip(t, c, []byte("hello"))
	start := time.Now()
	expectClosed(t, c)
	if d := time.Since(start); d < idle || d > idle+5*time.Second {
		t.Errorf("idle connection closed after %v, want about %v", d, idle)
	}
	s.waitMetric(t, "echoctl_connections_closed_total", "idle", 1)
	m := s.waitMetric(t, "echoctl_connections_active", "", 0) // read before the counter: see TestNeverReadingClient
	for name, want := range map[string]float64{"echoctl_connections_total": 1, "echoctl_bytes_received_total": 5, "echoctl_bytes_sent_total": 5} {
		if got := s.conn(m, name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	idleLine := func(l logLine) bool { return l.Level == "info" && strings.HasPrefix(l.Message, "idle timeout") }
	s.waitLog(t, "saying idle timeout", idleLine)
	s.logBarrier(t)
	if n := s.countLogs(idleLine); n != 1 {
		t.Errorf("%d idle timeout lines logged at info, want 1", n)
	}
}

// TestMaxConnsMetric: past --max-conns connections are closed at once and
// counted with reason limit, with one warning; the served ones go on.
func TestMaxConnsMetric(t *testing.T) {
	s := startServer(t, 0, "--max-conns", "2")
	a, b := dialFrom(t, "", s.addr), dialFrom(t, "", s.addr)
	roundTrip(t, a, []byte("a"))
	roundTrip(t, b, []byte("b"))
	for range 3 {
		expectClosed(t, dialFrom(t, "", s.addr))
	}
	m := s.waitMetric(t, "echoctl_connections_closed_total", "limit", 3)
	if got := s.conn(m, "echoctl_connections_total", ""); got != 5 {
		t.Errorf("echoctl_connections_total = %v, want 5", got)
	}
	if got := s.conn(m, "echoctl_connections_active", ""); got != 2 {
		t.Errorf("echoctl_connections_active = %v, want 2", got)
	}
	roundTrip(t, a, []byte("a still served"))
	a.Close()
	s.waitMetric(t, "echoctl_connections_closed_total", "eof", 1)
	free := dialFrom(t, "", s.addr)
	roundTrip(t, free, []byte("a place is free again"))
	free.Close()
	s.waitMetric(t, "echoctl_connections_closed_total", "eof", 2)
	s.logBarrier(t) // takes free's place
	if n := s.countLogs(func(l logLine) bool {
		return l.Level == "warn" && strings.HasPrefix(l.Message, "connection limit reached")
	}); n != 1 {
		t.Errorf("%d limit warnings for 3 refusals within a second, want 1", n)
	}
}

// TestMaxConnsPerIPMetric: --max-conns-per-ip counts each peer address on
// its own.
func TestMaxConnsPerIPMetric(t *testing.T) {
	s := startServer(t, 0, "--max-conns-per-ip", "1")
	roundTrip(t, dialFrom(t, "127.0.0.1", s.addr), []byte("first from .1"))
	expectClosed(t, dialFrom(t, "127.0.0.1", s.addr))
	roundTrip(t, dialFrom(t, "127.0.0.2", s.addr), []byte("first from .2"))
	expectClosed(t, dialFrom(t, "127.0.0.2", s.addr))
	m := s.waitMetric(t, "echoctl_connections_closed_total", "limit", 2)
	if got := s.conn(m, "echoctl_connections_active", ""); got != 2 {
		t.Errorf("echoctl_connections_active = %v, want 2", got)
	}
}

// TestAccessListMetric: --allow and --deny, as ncat's: deny wins; refused
// peers are closed before a byte is read, logged at info and counted.
func TestAccessListMetric(t *testing.T) {
	s := startServer(t, 0, "--allow", "127.0.0.0/30", "--deny", "127.0.0.3")
	roundTrip(t, dialFrom(t, "127.0.0.1", s.addr), []byte("allowed"))
	roundTrip(t, dialFrom(t, "127.0.0.2", s.addr), []byte("allowed"))
	denied := dialFrom(t, "127.0.0.3", s.addr) // in --allow, but denied
	denied.Write([]byte("never read"))
	expectClosed(t, denied)
	expectClosed(t, dialFrom(t, "127.0.0.5", s.addr)) // not in --allow
	m := s.waitMetric(t, "echoctl_connections_closed_total", "denied", 2)
	if got := s.conn(m, "echoctl_bytes_received_total", ""); got != float64(2*len("allowed")) {
		t.Errorf("echoctl_bytes_received_total = %v: a denied peer's bytes were read", got)
	}
	// Refusals are logged at most once a second: the second is its own
	// line if it came a second after the first, else counted by the
	// report that comes a second after the first.
	refused := func(l logLine) bool {
		return l.Level == "info" && l.Reason == "denied" && strings.HasPrefix(l.Message, "connection refused")
	}
	report := func(l logLine) bool {
		return l.Level == "info" && l.Reason == "denied" && strings.Contains(l.Message, "more connections refused by the access list")
	}
	s.waitLogs(t, "both refusals", 2, func(l logLine) bool { return refused(l) || report(l) })
	n := 0
	s.countLogs(func(l logLine) bool {
		switch {
		case refused(l):
			n += 1 + l.Unlogged
		case report(l):
			n += l.Unlogged
		}
		return false
	})
	if n != 2 {
		t.Errorf("%d refusals logged or counted at info, want 2:\n%s", n, s.logs())
	}
}

// TestFDExhaustion: under `ulimit -n 64`, connections past the limit make
// accept fail with EMFILE; the server logs it (at most once a second),
// keeps its open connections, and serves again by itself once they close.
func TestFDExhaustion(t *testing.T) {
	const (
		limit = 64
		conns = 100
	)
	s := startServer(t, limit)
	var held []*net.TCPConn
	for range conns {
		held = append(held, dialFrom(t, "", s.addr))
	}
	start := time.Now()
	s.waitLog(t, "about too many open files", func(l logLine) bool {
		return l.Level == "warn" && strings.Contains(l.Message, "too many open files")
	})
	// Accepted connections are still served while the rest wait.
	roundTrip(t, held[0], []byte("still served"))
	// The back-off goes on; the errors not logged meanwhile are counted,
	// by the next warning, a second or more after the first, or by a line
	// of their own at the end of that second.
	acceptWarning := func(l logLine) bool {
		return l.Logger == "main" && l.Level == "warn" && strings.HasPrefix(l.Message, "accept error:")
	}
	s.waitLogs(t, "about accept errors", 2, acceptWarning)
	// The line names the listener, as net's Accept errors do ("accept
	// tcp ADDR: accept4: ..."): the event loops' said only "accept4".
	if n := s.countLogs(func(l logLine) bool {
		return acceptWarning(l) && strings.HasPrefix(l.Message, "accept error: accept tcp "+s.addr+": accept4: too many open files")
	}); n == 0 {
		t.Errorf("no accept warning names the listener %s:\n%s", s.addr, s.logs())
	}
	warns := s.countLogs(acceptWarning)
	if secs := int(time.Since(start)/time.Second) + 2; warns > secs {
		t.Errorf("%d accept warnings in %v: not rate-limited", warns, time.Since(start))
	}
	if n := s.countLogs(func(l logLine) bool {
		return acceptWarning(l) && strings.Contains(l.Message, "more since the last report)") ||
			l.Logger == "main" && strings.HasSuffix(l.Message, " more accept errors since the last report")
	}); n == 0 {
		t.Errorf("no line counts the accept errors not logged since the first warning:\n%s", s.logs())
	}

	for _, c := range held {
		c.Close()
	}
	// It recovers by itself: it says so, and a new exchange succeeds.
	recoverStart := time.Now()
	s.waitLog(t, "accepting again", func(l logLine) bool { return strings.HasPrefix(l.Message, "accepting again after") })
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := exchange(ctx, s.addr, []byte("This is the message. It will be sent in parts.")); err != nil {
		t.Fatalf("no echo once the server said it accepts again: %v\n%s", err, s.logs())
	}
	t.Logf("serving again %v after the connections closed", time.Since(recoverStart).Round(time.Millisecond))
	m := s.scrape(t)
	if got := s.conn(m, "echoctl_accept_errors_total", ""); got < 1 {
		t.Errorf("echoctl_accept_errors_total = %v, want at least 1", got)
	}
	s.signal(t, syscall.SIGTERM)
	if code := s.wait(t, ioTimeout); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

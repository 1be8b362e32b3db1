package echo_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

// startVariant runs v's server, after set has adjusted it, and returns its
// address.
func startVariant(t *testing.T, v variant, w io.Writer, set func(*echo.Server)) (string, *echo.Server) {
	t.Helper()
	return startVariantOn(t, v, w, set, listenLocal(t))
}

func startVariantOn(t *testing.T, v variant, w io.Writer, set func(*echo.Server), ln net.Listener) (string, *echo.Server) {
	t.Helper()
	srv := v.server(w)
	set(srv)
	serve(t, srv, v.wrap(ln))
	return ln.Addr().String(), srv
}

// TestIdleTimeout: a connection on which nothing moves for IdleTimeout is
// closed, with reason idle; one that keeps talking is not.
func TestIdleTimeout(t *testing.T) {
	// The chatty peer talks every idle/16: it is closed only if it goes
	// unscheduled for most of idle, which a loaded machine under the race
	// detector did once in 40 runs with 400ms and idle/8.
	const idle = 800 * time.Millisecond
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			rec := newRecorder()
			var logs syncBuffer
			addr, _ := startVariant(t, v, &logs, func(s *echo.Server) {
				s.IdleTimeout = idle
				s.Observer = rec
			})

			// A chatty connection outlives the timeout: it talks until
			// the quiet one has been closed.
			chatty := dial(t, addr)
			quiet := dial(t, addr)
			// Times are taken before the last round trip: the server's
			// idle clock starts when it writes the echo, which may be
			// well before the client has read it on a loaded machine.
			quietSince := time.Now()
			roundTrip(t, quiet, []byte("then silence"))
			for i := 0; rec.closedCount(echo.CloseIdle) == 0; i++ {
				if time.Since(quietSince) > ioTimeout {
					t.Fatalf("no connection closed for idle %v after the quiet one went quiet", ioTimeout)
				}
				roundTrip(t, chatty, []byte{byte(i)})
				// The behaviour under test, not a wait: a peer that
				// talks every idle/16 is never idle for IdleTimeout.
				time.Sleep(idle / 16)
			}

			// The one closed is the quiet one: end of stream.
			got, err := readAll(quiet)
			if err != nil || len(got) != 0 {
				t.Fatalf("idle connection read %q, %v; want end of stream", got, err)
			}
			if d := time.Since(quietSince); d < idle {
				t.Errorf("idle connection closed after %v, before the %v timeout", d, idle)
			}
			rec.waitClosed(t, echo.CloseIdle, 1)
			start := time.Now()
			roundTrip(t, chatty, []byte("still here"))

			// Then the chatty one goes quiet and is closed too.
			if got, err := readAll(chatty); err != nil || len(got) != 0 {
				t.Fatalf("second idle connection read %q, %v; want end of stream", got, err)
			}
			if d := time.Since(start); d < idle || d > idle+5*time.Second {
				t.Errorf("idle connection closed after %v, want about %v", d, idle)
			}
			rec.waitClosed(t, echo.CloseIdle, 2)

			var infos, closing int
			for _, l := range parseLog(t, logs.String()) {
				if strings.HasPrefix(l.Message, "idle timeout") {
					infos++
					if l.Level != "info" {
						t.Errorf("idle timeout logged at %s, want info", l.Level)
					}
				}
				if l.Message == "closing" && l.Reason == "idle" {
					closing++
				}
			}
			if infos != 2 || closing != 2 {
				t.Errorf("logged %d idle timeouts and %d closings with reason idle, want 2 each:\n%s", infos, closing, logs.String())
			}
			rec.check(t)
		})
	}
}

// noDebug drops debug lines, which would make a log buffer grow with
// every chunk echoed.
type noDebug struct{ w io.Writer }

func (n noDebug) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"level":"debug"`)) {
		return len(p), nil
	}
	return n.w.Write(p)
}

// fillUntilClosed writes to c, never reading, until a write fails, and
// returns how much it wrote and the error.
func fillUntilClosed(c net.Conn, limit time.Duration) (int, error) {
	c.SetWriteDeadline(time.Now().Add(limit))
	chunk := make([]byte, 64<<10)
	written := 0
	for {
		n, err := c.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
	}
}

// TestWriteTimeout: a peer that stops reading is closed once the server's
// write has made no progress for WriteTimeout, with reason write-timeout;
// the server's memory stays flat meanwhile.
func TestWriteTimeout(t *testing.T) {
	const wt = 300 * time.Millisecond
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			rec := newRecorder()
			var logs syncBuffer
			addr, _ := startVariantOn(t, v, noDebug{&logs}, func(s *echo.Server) {
				s.WriteTimeout = wt
				s.Observer = rec
			}, listenSmallSendBuffer(t))
			c := dial(t, addr)
			// A small receive buffer: the server's writes stall soon after
			// the client stops reading, even with 7-byte chunks.
			c.SetReadBuffer(16 << 10)
			roundTrip(t, c, []byte("hello"))

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			written, err := fillUntilClosed(c, ioTimeout)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the server never closed a connection whose peer does not read (wrote %d bytes)", written)
			}
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				t.Errorf("writing to the closed connection: %v; want a reset or broken pipe", err)
			}
			rec.waitClosed(t, echo.CloseWriteTimeout, 1)
			if d := time.Since(start); d < wt || (d > wt+5*time.Second && !v.small()) {
				t.Errorf("closed %v after the peer stopped reading, want about %v", d, wt)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 4<<20 {
				t.Errorf("heap grew %d KiB while the peer did not read", grew>>10)
			}

			// Others are served meanwhile and after.
			cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
			if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
				t.Errorf("another client: %v", err)
			}
			if !strings.Contains(logs.String(), `"reason":"write-timeout"`) {
				t.Errorf("no closing line with reason write-timeout:\n%s", logs.String())
			}
			rec.check(t)
		})
	}
}

// TestWriteTimeoutSlowReader: a peer that reads slowly but steadily is not
// cut off by a WriteTimeout shorter than the whole transfer.
func TestWriteTimeoutSlowReader(t *testing.T) {
	const wt = 500 * time.Millisecond
	rec := newRecorder()
	addr, _ := startVariant(t, variants[0], nil, func(s *echo.Server) {
		s.WriteTimeout = wt
		s.IdleTimeout = time.Minute
		s.Observer = rec
	})
	start := time.Now()
	slowReader(t, dial(t, addr), randomBytes(5, 3<<20), 64<<10)
	if d := time.Since(start); d < wt {
		t.Logf("transfer took only %v: the reader was not slow enough to prove much", d)
	}
	rec.waitClosed(t, echo.CloseEOF, 1)
	if n := rec.closedCount(echo.CloseWriteTimeout); n != 0 {
		t.Errorf("a steady reader was closed for write timeout")
	}
}

// TestWriteTimeoutSteadyReaderFullBuffer: a peer that reads steadily but
// slower than a third of the server's send buffer per WriteTimeout is not
// cut off. The socket drains all along, but is not reported writable until
// a third of its buffer is free, so the write back itself makes no
// progress for longer than the timeout: the server must see that the peer
// takes bytes from the send queue. The listener's SO_SNDBUF (which
// accepted sockets inherit) makes the buffer large against the reader,
// whose own small receive buffer keeps little in flight.
func TestWriteTimeoutSteadyReaderFullBuffer(t *testing.T) {
	// The send buffer is 2 MiB (the kernel doubles SO_SNDBUF): a third of
	// it is more than the reader takes in a timeout, with a margin for a
	// loaded machine's scheduling.
	const wt = 400 * time.Millisecond
	fx := newTLSFixture(t)
	for _, v := range append(variants[:2:2], variant{name: "TLS", server: quietServer}) { // loops, goroutines, TLS
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			ln := listenLocal(t)
			setSockopt(t, ln.(syscall.Conn), syscall.SO_SNDBUF, 1<<20)
			set := func(s *echo.Server) {
				s.WriteTimeout = wt
				s.Observer = rec
			}
			isTLS := v.name == "TLS"
			if isTLS {
				ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}})
			}
			addr, _ := startVariantOn(t, v, nil, set, ln)
			raw := dial(t, addr)
			if err := raw.SetReadBuffer(32 << 10); err != nil {
				t.Fatal(err)
			}
			var c interface {
				net.Conn
				CloseWrite() error
			} = raw
			if isTLS {
				c = tls.Client(raw, &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "localhost"})
			}
			// 16 KiB every 20ms, 800 KB/s, under half of the send
			// buffer's third in a timeout.
			slowReader(t, c, randomBytes(6, 3<<20), 16<<10)
			rec.waitClosed(t, echo.CloseEOF, 1)
		})
	}
}

// TestIdleTimeoutBoundsWrites: with only IdleTimeout set, a write that
// makes no progress for that long closes the connection too: no byte moves
// either way. The reason is idle.
func TestIdleTimeoutBoundsWrites(t *testing.T) {
	rec := newRecorder()
	addr, _ := startVariant(t, variants[0], nil, func(s *echo.Server) {
		s.IdleTimeout = 300 * time.Millisecond
		s.Observer = rec
	})
	c := dial(t, addr)
	if _, err := fillUntilClosed(c, ioTimeout); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a stalled write was never timed out")
	}
	rec.waitClosed(t, echo.CloseIdle, 1)
}

// TestAcceptErrorsRateLimited: a burst of retried accept errors is logged
// once, not once per error, every error reaches the Observer, and the
// recovery is logged.
func TestAcceptErrorsRateLimited(t *testing.T) {
	const errs = 6 // 5+10+...+160ms of pauses
	var logs syncBuffer
	rec := newRecorder()
	srv := &echo.Server{Logger: zerolog.New(&logs), Observer: rec}
	ln := listenLocal(t)
	acceptErr := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	fl := &flakyListener{Listener: ln}
	for range errs {
		fl.errs = append(fl.errs, acceptErr)
	}
	serve(t, srv, fl)
	cl := &echo.Client{Addr: ln.Addr().String(), Timeout: ioTimeout}
	if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
		t.Fatal(err)
	}
	if got := rec.acceptErrors.Load(); got != errs {
		t.Errorf("Observer told of %d accept errors, want %d", got, errs)
	}
	var warns, recovered int
	for _, l := range parseLog(t, logs.String()) {
		if l.Level == "warn" && strings.HasPrefix(l.Message, "accept error:") {
			warns++
		}
		if l.Level == "info" && strings.HasPrefix(l.Message, "accepting again after 6 accept errors") {
			recovered++
		}
	}
	if warns != 1 || recovered != 1 {
		t.Errorf("%d accept warnings and %d recoveries logged, want 1 each:\n%s", warns, recovered, logs.String())
	}
}

// acceptErrors is an Observer that passes on when each accept error is
// reported, which is just before Serve pauses for it.
type acceptErrors struct {
	nopObserver
	at chan time.Time
}

func (a acceptErrors) AcceptError(string, error) { a.at <- time.Now() }

// TestAcceptPauseEndsOnShutdown: Serve does not sleep out its accept
// back-off once the server shuts down.
func TestAcceptPauseEndsOnShutdown(t *testing.T) {
	const (
		errs   = 12
		inLong = 9 // the pause after the 9th error is the longest, 1s (5ms doubling)
		pause  = time.Second
	)
	obs := acceptErrors{at: make(chan time.Time, errs)}
	srv := &echo.Server{Observer: obs}
	ln := listenLocal(t)
	acceptErr := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	fl := &flakyListener{Listener: ln}
	for range errs {
		fl.errs = append(fl.errs, acceptErr)
	}
	s := serve(t, srv, fl)
	var pausing time.Time // when Serve began the long pause
	for i := range inLong {
		select {
		case pausing = <-obs.at:
		case <-time.After(ioTimeout):
			t.Fatalf("%d accept errors reported in %v, want %d", i, ioTimeout, inLong)
		}
	}
	if err := shutdown(srv, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	if d := time.Since(pausing); d >= pause {
		t.Errorf("Serve returned %v after it began a %v pause, with Shutdown called meanwhile: it slept out its back-off", d, pause)
	}
}

// nopObserver is the cheapest Observer: what the fast path costs with one.
type nopObserver struct{}

func (nopObserver) Listening(string, bool)                          {}
func (nopObserver) AcceptError(string, error)                       {}
func (nopObserver) ConnAccepted(string, net.Addr) echo.ConnObserver { return nopConnObserver{} }

type nopConnObserver struct{}

func (nopConnObserver) Received(int)            {}
func (nopConnObserver) Sent(int, time.Duration) {}
func (nopConnObserver) Closed(echo.CloseReason) {}

// TestFastPathAllocs: the echo path that does not log data allocates
// nothing per chunk, with the limits, timeouts and an observer off (the
// default) or on.
func TestFastPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	configs := []struct {
		name string
		set  func(*echo.Server)
	}{
		{"defaults", func(*echo.Server) {}},
		{"defaults, goroutines", func(s *echo.Server) { echo.WithoutLoops(s) }},
		{"timeouts, limits and observer", func(s *echo.Server) {
			s.IdleTimeout = time.Minute
			s.WriteTimeout = time.Minute
			s.MaxConns = 100
			s.MaxConnsPerIP = 100
			s.Deny = prefixes("192.0.2.0/24")
			s.Observer = nopObserver{}
		}},
	}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			addr, _ := startVariant(t, variants[0], nil, cfg.set)
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(ioTimeout))
			msg := randomBytes(1, 1024)
			got := make([]byte, len(msg))
			echoOnce := func() {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatal(err)
				}
			}
			for range 200 {
				echoOnce()
			}
			const rounds = 2000
			best := uint64(1 << 62)
			for range 3 {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for range rounds {
					echoOnce()
				}
				runtime.ReadMemStats(&after)
				best = min(best, after.Mallocs-before.Mallocs)
			}
			// Both ends run in this process: the count covers the client
			// too, and the runtime's own background work.
			if perChunk := float64(best) / rounds; perChunk > 0.05 {
				t.Errorf("%.3f allocations per echoed chunk (%d in %d), want none", perChunk, best, rounds)
			}
		})
	}
}

// BenchmarkFastPathGuarded measures one 1 KiB round trip through the fast
// path with the limits, timeouts and an observer off and on.
func BenchmarkFastPathGuarded(b *testing.B) {
	configs := []struct {
		name string
		set  func(*echo.Server)
	}{
		{"off", func(*echo.Server) {}},
		{"timeouts", func(s *echo.Server) {
			s.IdleTimeout = time.Minute
			s.WriteTimeout = time.Minute
		}},
		{"observer", func(s *echo.Server) { s.Observer = nopObserver{} }},
		{"on", func(s *echo.Server) {
			s.IdleTimeout = time.Minute
			s.WriteTimeout = time.Minute
			s.MaxConns = 100
			s.Observer = nopObserver{}
		}},
	}
	for _, cfg := range configs {
		b.Run(cfg.name, func(b *testing.B) {
			srv := &echo.Server{}
			cfg.set(srv)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			defer func() {
				srv.Close()
				<-done
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 1024)
			got := make([]byte, len(msg))
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTimeoutLimit: an IdleTimeout or WriteTimeout beyond MaxTimeout, which
// the deadline arithmetic cannot hold (it closed every connection at once),
// makes Serve fail with ErrInvalidTimeout; MaxTimeout itself serves, and a
// connection is not closed by it.
func TestTimeoutLimit(t *testing.T) {
	huge := 2500000 * time.Hour // near the largest time.Duration
	tests := []struct {
		name      string
		idle, wrt time.Duration
		wantErr   string // "" : serves
	}{
		{name: "idle huge", idle: huge, wantErr: "echo: invalid timeout: idle timeout 2500000h (must be at most 10000h)"},
		{name: "write huge", wrt: huge, wantErr: "echo: invalid timeout: write timeout 2500000h (must be at most 10000h)"},
		{name: "idle just over", idle: echo.MaxTimeout + 1, wantErr: "echo: invalid timeout: idle timeout 10000h0m0.000000001s (must be at most 10000h)"},
		{name: "both at the limit", idle: echo.MaxTimeout, wrt: echo.MaxTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &echo.Server{IdleTimeout: tt.idle, WriteTimeout: tt.wrt}
			ln := listenLocal(t)
			s := serve(t, srv, ln)
			if tt.wantErr != "" {
				err := s.wait(t, ioTimeout)
				if !errors.Is(err, echo.ErrInvalidTimeout) || err.Error() != tt.wantErr {
					t.Fatalf("Serve = %v, want %q", err, tt.wantErr)
				}
				return
			}
			c := dial(t, ln.Addr().String())
			roundTrip(t, c, []byte("first"))
			// A deadline in the past would have closed it by now: the
			// next read or write fails at once.
			roundTrip(t, c, []byte("second"))
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read on an idle connection = %d, %v; want it still open", n, err)
			}
		})
	}
}

// slowReader writes data on c and half-closes, while it reads the echo
// back a chunk every 20ms (the behaviour under test, not a wait), and
// checks it is all of data.
func slowReader(t *testing.T, c interface {
	net.Conn
	CloseWrite() error
}, data []byte, chunk int) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(ioTimeout))
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	var got bytes.Buffer
	buf := make([]byte, chunk)
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		n, err := io.ReadFull(c, buf)
		got.Write(buf[:n])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got.Len(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("echo of %d bytes differs at byte %d", got.Len(), firstDiff(got.Bytes(), data))
	}
}

// setSockopt sets a SOL_SOCKET option on sc's socket.
func setSockopt(t *testing.T, sc syscall.Conn, opt, value int) {
	t.Helper()
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, value) }); err != nil || serr != nil {
		t.Fatalf("setsockopt: %v, %v", err, serr)
	}
}

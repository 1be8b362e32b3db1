package echo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

func TestEchoSeedMessages(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			addr, _ := v.start(t, nil)
			c := dial(t, addr)
			for _, m := range seedMessages {
				if _, err := c.Write(m); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c)
			if err != nil {
				t.Fatalf("reading the echo: %v", err)
			}
			if string(got) != seedEcho {
				t.Errorf("echo = %q, want %q", got, seedEcho)
			}
		})
	}
}

// chunker returns the size of the i'th write or read.
type chunker func(i int) int

func cycle(sizes ...int) chunker { return func(i int) int { return sizes[i%len(sizes)] } }

func TestEchoPartialWritesAndReads(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		writes chunker
		reads  chunker
	}{
		{"byte by byte", 3000, cycle(1), cycle(1)},
		{"byte writes, big reads", 3000, cycle(1), cycle(4096)},
		{"odd chunks", 64 << 10, cycle(3, 5, 7, 11, 13, 127, 129, 1000, 4099), cycle(1, 3, 17, 128, 1000)},
		{"around BufferSize", 64 << 10, cycle(127, 128, 129, 255, 256, 257), cycle(128)},
		{"large writes, odd reads", 256 << 10, cycle(65537, 12345), cycle(7, 333, 65536)},
	}
	for _, v := range variants {
		for i, tt := range tests {
			t.Run(v.name+"/"+tt.name, func(t *testing.T) {
				addr, _ := v.start(t, nil)
				c := dial(t, addr)
				c.SetDeadline(time.Now().Add(ioTimeout))
				data := randomBytes(uint64(100+i), min(tt.size, v.bulk/2))

				werr := make(chan error, 1)
				go func() {
					rest := data
					for i := 0; len(rest) > 0; i++ {
						n := min(tt.writes(i), len(rest))
						if _, err := c.Write(rest[:n]); err != nil {
							werr <- err
							return
						}
						rest = rest[n:]
					}
					werr <- c.CloseWrite()
				}()

				var got []byte
				buf := make([]byte, 1<<17)
				var err error
				for i := 0; err == nil; i++ {
					var n int
					n, err = c.Read(buf[:tt.reads(i)])
					got = append(got, buf[:n]...)
				}
				if err != io.EOF {
					t.Fatalf("read after %d bytes: %v", len(got), err)
				}
				if err := <-werr; err != nil {
					t.Fatalf("write: %v", err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("echo of %d bytes differs: got %d bytes, first difference at %d", len(data), len(got), firstDiff(got, data))
				}
			})
		}
	}
}

// TestEchoLockStep writes a chunk and waits for exactly that chunk to come
// back before writing the next, so a server that held bytes back (waiting
// to fill its buffer, say) would stall it.
func TestEchoLockStep(t *testing.T) {
	sizes := []int{1, 2, 3, 5, 7, 11, 127, 128, 129, 1000, 4099, 70000}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			addr, _ := v.start(t, nil)
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(ioTimeout))
			for i, n := range sizes {
				chunk := randomBytes(uint64(i), n)
				if _, err := c.Write(chunk); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, n)
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatalf("chunk %d (%d bytes): %v", i, n, err)
				}
				if !bytes.Equal(got, chunk) {
					t.Fatalf("chunk %d (%d bytes) differs at %d", i, n, firstDiff(got, chunk))
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestEchoAllByteValues(t *testing.T) {
	data := allBytes()
	rev := slices.Clone(data)
	slices.Reverse(rev)
	data = bytes.Repeat(append(data, rev...), 4)

	for _, v := range variants {
		t.Run(v.name+"/raw", func(t *testing.T) {
			addr, _ := v.start(t, nil)
			c := dial(t, addr)
			go func() {
				c.Write(data)
				c.CloseWrite()
			}()
			got, err := readAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("echo differs at byte %d of %d", firstDiff(got, data), len(data))
			}
		})
		t.Run(v.name+"/client", func(t *testing.T) {
			addr, _ := v.start(t, nil)
			var got bytes.Buffer
			cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
			res, err := cl.Send(t.Context(), [][]byte{data[:100], data[100:]}, &got)
			if err != nil {
				t.Fatal(err)
			}
			if want := (echo.Result{Sent: int64(len(data)), Received: int64(len(data))}); res != want {
				t.Errorf("Send = %+v, want %+v", res, want)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("echo differs at byte %d of %d", firstDiff(got.Bytes(), data), len(data))
			}
		})
	}
}

func TestEchoLargeMessage(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			size := v.bulk
			data := randomBytes(42, size)
			addr, _ := v.start(t, nil)
			var got bytes.Buffer
			got.Grow(size)
			// Send writes the whole message while its reader drains the
			// echo; a client that wrote first and read after would deadlock
			// once the socket buffers filled.
			cl := &echo.Client{Addr: addr, Timeout: 30 * time.Second, BufferSize: 64 << 10}
			res, err := cl.Send(t.Context(), [][]byte{data}, &got)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != int64(size) || res.Received != int64(size) {
				t.Errorf("Send = %+v, want %d bytes each way", res, size)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("echo of %d bytes differs at byte %d (got %d bytes)", size, firstDiff(got.Bytes(), data), got.Len())
			}
		})
	}
}

func TestHalfClose(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name+"/server waits for the half-close", func(t *testing.T) {
			addr, _ := v.start(t, nil)
			c := dial(t, addr)
			roundTrip(t, c, []byte("abc"))

			// The peer has not half-closed: the server must keep the
			// connection open and send nothing more.
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := c.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("before the half-close, Read = %d, %v; want a timeout", n, err)
			}

			if _, err := c.Write([]byte("def")); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c)
			if err != nil {
				t.Fatalf("after the half-close: %v", err)
			}
			if string(got) != "def" {
				t.Errorf("echo after the half-close = %q, want %q", got, "def")
			}
		})
		t.Run(v.name+"/pending data is echoed before the close", func(t *testing.T) {
			size := min(v.bulk/2, 1<<20)
			data := randomBytes(7, size)
			addr, _ := v.start(t, nil)
			c := dial(t, addr)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				if err == nil {
					err = c.CloseWrite()
				}
				werr <- err
			}()
			got, err := readAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("echo of %d bytes differs at byte %d (got %d bytes)", size, firstDiff(got, data), len(got))
			}
		})
		t.Run(v.name+"/nothing sent", func(t *testing.T) {
			addr, _ := v.start(t, nil)
			c := dial(t, addr)
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c)
			if err != nil || len(got) != 0 {
				t.Fatalf("ReadAll = %q, %v; want an empty stream ending in EOF", got, err)
			}
		})
	}
}

func TestManyConcurrentClients(t *testing.T) {
	const clients = 200
	for _, v := range variants {
		if v.small() {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			addr, _ := v.start(t, nil)
			var wg sync.WaitGroup
			for i := range clients {
				wg.Go(func() {
					data := randomBytes(uint64(1000+i), 1+i*97%(32<<10))
					// Prefix each with its index so no two are alike.
					data = append([]byte(fmt.Sprintf("client %d:", i)), data...)
					cl := &echo.Client{Addr: addr, Timeout: 20 * time.Second}
					var got bytes.Buffer
					res, err := cl.Send(t.Context(), [][]byte{data[:len(data)/2], data[len(data)/2:]}, &got)
					if err != nil {
						t.Errorf("client %d: %v", i, err)
						return
					}
					if res.Sent != int64(len(data)) || res.Received != int64(len(data)) {
						t.Errorf("client %d: Send = %+v, want %d bytes each way", i, res, len(data))
					}
					if !bytes.Equal(got.Bytes(), data) {
						t.Errorf("client %d: echo differs at byte %d", i, firstDiff(got.Bytes(), data))
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestSilentPeerGoes: a peer that connects and goes without sending a
// byte (a balancer's plain health check, which HAProxy ends with a reset;
// tcping; a port scan) is no warning, with a greeting too, whose write
// then finds it gone (on a Unix socket, always): its end is logged at
// debug level. A peer that sent bytes and resets is warned about
// (TestClientVanishes).
func TestSilentPeerGoes(t *testing.T) {
	for _, v := range variants {
		for _, greeting := range []string{"", "hello"} {
			t.Run(fmt.Sprintf("%s greeting %q", v.name, greeting), func(t *testing.T) {
				var logs syncBuffer
				rec := newRecorder()
				addr, _ := startVariant(t, v, &logs, func(s *echo.Server) {
					s.Greeting = greeting
					s.Observer = rec
				})
				const peers = 4
				for i := range peers {
					c := dial(t, addr)
					if i%2 == 0 {
						c.SetLinger(0) // a reset, as HAProxy's checks end
					}
					c.Close()
				}
				deadline := time.After(ioTimeout)
				for rec.totalClosed() < peers {
					select {
					case <-rec.changed:
					case <-deadline:
						t.Fatalf("%d of %d connections closed", rec.totalClosed(), peers)
					}
				}
				for _, l := range parseLog(t, logs.String()) {
					if l.Level == "warn" || l.Level == "error" {
						t.Errorf("%s line for a peer that sent nothing: %+v", l.Level, l)
					}
				}
			})
		}
	}
}

// TestClientVanishes resets a connection in the middle of a stream: the
// server must log it, close its side, and go on serving.
func TestClientVanishes(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var logs syncBuffer
			addr, srv := v.start(t, &logs)
			c := dial(t, addr)
			roundTrip(t, c, []byte("hello"))
			// Leave data in flight both ways, then reset: SO_LINGER 0 makes
			// Close send RST instead of FIN.
			c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
			c.Write(randomBytes(1, 256<<10))
			if err := c.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			name := echo.LoggerName(c.LocalAddr())
			c.Close()

			cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
			var got bytes.Buffer
			if _, err := cl.Send(t.Context(), seedMessages, &got); err != nil {
				t.Fatalf("a fresh client after the reset: %v", err)
			}
			if got.String() != seedEcho {
				t.Errorf("fresh client's echo = %q, want %q", got.String(), seedEcho)
			}

			// Shutdown waits for every connection: nil means the reset one
			// is gone too.
			if err := shutdown(srv, 5*time.Second); err != nil {
				t.Fatalf("Shutdown after the reset: %v", err)
			}

			var warned, closed bool
			for _, l := range parseLog(t, logs.String()) {
				if l.Logger != name {
					continue
				}
				switch {
				case l.Level == "warn":
					warned = true
					if !strings.Contains(l.Error, "connection reset") && !strings.Contains(l.Error, "broken pipe") {
						t.Errorf("warning for the reset connection has error %q, want a reset or broken pipe", l.Error)
					}
				case l.Message == "closing":
					closed = true
					if !warned {
						t.Errorf("%s logged closing before the warning", name)
					}
				}
			}
			if !warned || !closed {
				t.Errorf("logs for %s: warned %v, closed %v; want both\n%s", name, warned, closed, logs.String())
			}
		})
	}
}

// TestSlowReaderIsBounded connects a client that writes as fast as it can
// and never reads. The server must stop reading once its write back blocks,
// so the client soon blocks too, and the server's memory stays flat.
func TestSlowReaderIsBounded(t *testing.T) {
	const (
		maxWrite    = 64 << 20
		bound       = 16 << 20
		heapBound   = 4 << 20
		writeWindow = 2 * time.Second
	)
	for _, v := range variants {
		if v.small() {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			// The variants wait out their write deadlines side by side;
			// neither may grow the heap, so each measure holds.
			t.Parallel()
			addr, _ := v.start(t, nil)
			c := dial(t, addr)
			roundTrip(t, c, []byte("hello"))
			chunk := randomBytes(3, 256<<10)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)

			c.SetWriteDeadline(time.Now().Add(writeWindow))
			var written int
			var err error
			for written < maxWrite && err == nil {
				var n int
				n, err = c.Write(chunk)
				written += n
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("wrote %d bytes to a server whose client never reads, then %v; want the write to block until the deadline", written, err)
			}
			if written >= bound {
				t.Errorf("wrote %d MiB before blocking; want less than %d MiB (socket buffers and one server buffer)", written>>20, bound>>20)
			}

			runtime.GC()
			runtime.ReadMemStats(&after)
			if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > heapBound {
				t.Errorf("heap in use grew by %d KiB while the client did not read; want under %d KiB", grew>>10, heapBound>>10)
			}
			t.Logf("wrote %d KiB before blocking", written>>10)

			// The stalled connection stalls only itself.
			cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
			if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
				t.Errorf("another client while one is stalled: %v", err)
			}
		})
	}
}

// TestShutdownWaitsForEcho: a connection open when Shutdown starts still
// gets its whole echo if the peer half-closes before the context ends.
func TestShutdownWaitsForEcho(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			srv := v.server(nil)
			rec := newRecorder()
			srv.Observer = rec
			ln := v.listen(t)
			s := serve(t, srv, ln)
			c := dial(t, ln.Addr().String())
			roundTrip(t, c, []byte("idle"))

			// Shutdown may return only once the connection has closed:
			// the Observer hears of the close before Shutdown returns,
			// however late Shutdown is looked at.
			type result struct {
				err    error
				closed int // connections closed when Shutdown returned
			}
			shut := make(chan result, 1)
			go func() {
				err := shutdown(srv, 5*time.Second)
				shut <- result{err, rec.totalClosed()}
			}()

			if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
				t.Fatalf("Serve = %v, want ErrServerClosed as soon as Shutdown starts", err)
			}
			waitRefused(t, ln.Addr().String())
			select {
			case r := <-shut:
				t.Fatalf("Shutdown returned %v while a connection was still open", r.err)
			default:
			}

			data := append([]byte("after shutdown began: "), allBytes()...)
			for _, m := range [][]byte{data[:10], data[10:]} {
				if _, err := c.Write(m); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c)
			if err != nil {
				t.Fatalf("reading the echo during Shutdown: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("echo during Shutdown = %q, want %q", got, data)
			}
			select {
			case r := <-shut:
				if r.err != nil {
					t.Errorf("Shutdown = %v, want nil", r.err)
				}
				if r.closed != 1 {
					t.Errorf("Shutdown returned with %d of 1 connections closed; want it to wait for the echo", r.closed)
				}
			case <-time.After(ioTimeout):
				t.Fatal("Shutdown did not return after the last connection closed")
			}
		})
	}
}

// TestShutdownDeadline: a connection that never half-closes is ended when
// the Shutdown context does, with everything it sent echoed and a clean
// FIN, not a reset.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	for _, v := range variants {
		t.Run(v.name+"/quiet peer", func(t *testing.T) {
			t.Parallel()
			srv := v.server(nil)
			ln := v.listen(t)
			s := serve(t, srv, ln)
			c := dial(t, ln.Addr().String())
			sent := randomBytes(9, 1000)
			roundTrip(t, c, sent)

			start := time.Now()
			shut := make(chan error, 1)
			go func() { shut <- shutdown(srv, grace) }()
			if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
				t.Fatalf("Serve = %v, want ErrServerClosed", err)
			}

			// Nothing more arrives, then end of stream.
			rest, err := readAll(c)
			if err != nil {
				t.Fatalf("after the Shutdown deadline the client read %v; want EOF", err)
			}
			if len(rest) != 0 {
				t.Errorf("after the echo the client read %q more", rest)
			}
			if d := time.Since(start); d < grace {
				t.Errorf("connection closed %v after Shutdown began; want after the %v context ended", d, grace)
			}
			c.Close()
			select {
			case err := <-shut:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
				}
			case <-time.After(ioTimeout):
				t.Fatal("Shutdown did not return")
			}
		})

		t.Run(v.name+"/chatty peer", func(t *testing.T) {
			t.Parallel()
			srv := v.server(nil)
			ln := v.listen(t)
			s := serve(t, srv, ln)
			c := dial(t, ln.Addr().String())
			roundTrip(t, c, []byte("x"))
			sent := []byte("x")

			// The writer keeps sending small chunks, one every 5ms (the
			// chatty peer under test), until the reader sees the end of
			// the stream. Shutdown begins once it has sent a few.
			const before = 5
			var mu sync.Mutex
			stop := make(chan struct{})
			wdone := make(chan struct{})
			chatting := make(chan struct{}) // closed after the first chunks
			go func() {
				defer close(wdone)
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					chunk := []byte(fmt.Sprintf("chunk %d;", i))
					mu.Lock()
					n, err := c.Write(chunk)
					sent = append(sent, chunk[:n]...)
					mu.Unlock()
					if err != nil {
						return
					}
					if i == before-1 {
						close(chatting)
					}
				}
			}()
			select {
			case <-chatting:
			case <-wdone:
				t.Fatalf("a write failed before Shutdown began")
			case <-time.After(ioTimeout):
				t.Fatalf("the peer could not send %d chunks in %v", before, ioTimeout)
			}
			mu.Lock()
			sentBefore := len(sent)
			mu.Unlock()

			shut := make(chan error, 1)
			go func() { shut <- shutdown(srv, grace) }()

			got := []byte("x")
			rest, err := readAll(c)
			got = append(got, rest...)
			close(stop)
			<-wdone
			if err != nil {
				t.Errorf("client read ended with %v (reset: %v); want EOF", err, isReset(err))
			}
			mu.Lock()
			defer mu.Unlock()
			if !bytes.HasPrefix(sent, got) {
				t.Errorf("echo is not a prefix of what was sent (differs at %d)", firstDiff(got, sent))
			}
			if len(got) < sentBefore {
				t.Errorf("echo has %d bytes; want at least the %d sent before Shutdown began", len(got), sentBefore)
			}
			c.Close()
			select {
			case err := <-shut:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
				}
			case <-time.After(ioTimeout):
				t.Fatal("Shutdown did not return")
			}
			if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
		})
	}
}

// shutdownStalled opens a connection to a server of variant v, logging to
// w, whose peer neither reads nor half-closes, with the server blocked
// writing its echo back, then shuts the server down with a 100ms context
// and returns how long Shutdown took.
func shutdownStalled(t *testing.T, v variant, w io.Writer) time.Duration {
	t.Helper()
	addr, srv := v.start(t, w)
	c := dial(t, addr)
	roundTrip(t, c, []byte("hello"))
	// Fill the pipes so that the server blocks writing the echo back; each
	// Write blocks until the deadline once they are full.
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	chunk := make([]byte, 256<<10)
	for {
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- shutdown(srv, 100*time.Millisecond) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown hangs on a connection whose peer does not read")
	}
	return time.Since(start)
}

// TestShutdownStalledWriterWithinLinger holds Shutdown to its documented
// bound: past the context, a connection "closes within about a second"
// (drainLinger), stalled write or not.
func TestShutdownStalledWriterWithinLinger(t *testing.T) {
	t.Parallel()
	const bound = 100*time.Millisecond + time.Second + 500*time.Millisecond
	if d := shutdownStalled(t, variants[0], nil); d > bound {
		t.Errorf("Shutdown with a 100ms context took %v; want about a second past the context (under %v)", d, bound)
	}
}

// TestShutdownLostEchoLogged: a connection whose peer reads none of the
// echo it is owed past Shutdown's deadline closes with one warning that
// says so, after its closing line, on both engines.
func TestShutdownLostEchoLogged(t *testing.T) {
	for _, v := range variants[:2] { // loops and goroutines
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			shutdownStalled(t, v, &logs)
			var lost, closing int
			for _, l := range parseLog(t, logs.String()) {
				switch {
				case l.Level == "warn" && strings.HasPrefix(l.Message, "shutdown: the rest of the echo was not written"):
					lost++
				case l.Message == "closing":
					closing++
				}
			}
			if lost != 1 || closing != 1 {
				t.Errorf("%d warnings of an echo not written and %d closing lines, want 1 each:\n%s", lost, closing, logs.String())
			}
		})
	}
}

func TestCloseClosesConnections(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			srv := v.server(nil)
			ln := v.listen(t)
			s := serve(t, srv, ln)
			c1 := dial(t, ln.Addr().String())
			c2 := dial(t, ln.Addr().String())
			roundTrip(t, c1, []byte("one"))
			roundTrip(t, c2, []byte("two"))

			closed := make(chan error, 1)
			go func() { closed <- srv.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Errorf("Close = %v", err)
				}
			case <-time.After(ioTimeout):
				t.Fatal("Close did not return")
			}
			// Close returns only once the connections are closed, so the
			// clients see the end at once, without half-closing.
			for _, c := range []net.Conn{c1, c2} {
				c.SetReadDeadline(time.Now().Add(time.Second))
				n, err := c.Read(make([]byte, 8))
				if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("after Close, Read = %d, %v; want EOF or a reset", n, err)
				}
			}
			if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
			if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
				c.Close()
				t.Error("the listener still accepts after Close")
			}
		})
	}
}

func TestServeAfterShutdown(t *testing.T) {
	stops := []struct {
		name string
		stop func(*echo.Server) error
	}{
		{"Shutdown", func(s *echo.Server) error { return shutdown(s, time.Second) }},
		{"Close", (*echo.Server).Close},
	}
	for _, st := range stops {
		t.Run(st.name+"/Serve", func(t *testing.T) {
			var srv echo.Server
			if err := st.stop(&srv); err != nil {
				t.Fatalf("%s on an idle server = %v", st.name, err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if err := srv.Serve(ln); !errors.Is(err, echo.ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
			// Serve always closes the listener.
			if c, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
				if c != nil {
					c.Close()
				}
				t.Errorf("Accept on the listener after Serve returned = %v, want net.ErrClosed", err)
			}
		})
		t.Run(st.name+"/ListenAndServe", func(t *testing.T) {
			srv := echo.Server{Addr: "127.0.0.1:0"}
			if err := st.stop(&srv); err != nil {
				t.Fatal(err)
			}
			if err := srv.ListenAndServe(); !errors.Is(err, echo.ErrServerClosed) {
				t.Errorf("ListenAndServe = %v, want ErrServerClosed", err)
			}
		})
	}
}

func TestStopIsIdempotent(t *testing.T) {
	srv := &echo.Server{}
	ln := listenLocal(t)
	s := serve(t, srv, ln)
	roundTrip(t, dial(t, ln.Addr().String()), []byte("x"))
	if err := srv.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := shutdown(srv, time.Second); err != nil {
		t.Errorf("Shutdown after Close = %v", err)
	}
	if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
}

// TestPortFreeAfterStop: once Shutdown or Close returns, the listener's
// port is free (the event loops accept on a duplicate of its socket, which
// must be closed by then too), so that a program can listen on it again
// at once, as with net/http.
func TestPortFreeAfterStop(t *testing.T) {
	stops := map[string]func(*echo.Server) error{
		"Shutdown": func(srv *echo.Server) error { return shutdown(srv, time.Second) },
		"Close":    (*echo.Server).Close,
	}
	for _, v := range variants[:2] { // loops and goroutines
		for name, stop := range stops {
			t.Run(v.name+"/"+name, func(t *testing.T) {
				for range 30 {
					addr, srv := v.start(t, nil)
					c := dial(t, addr)
					roundTrip(t, c, []byte("x"))
					c.Close()
					if err := stop(srv); err != nil {
						t.Fatalf("%s = %v", name, err)
					}
					ln, err := net.Listen("tcp", addr)
					if err != nil {
						t.Fatalf("listen again after %s: %v", name, err)
					}
					ln.Close()
				}
			})
		}
	}
}

// listenAndServe runs srv.ListenAndServe for at most d; if it is still
// serving then, it closes srv and fails.
func listenAndServe(t *testing.T, srv *echo.Server, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		srv.Close()
		<-done
		t.Fatalf("ListenAndServe with Addr %q is serving; want an error", srv.Addr)
		return nil
	}
}

func TestListenAndServeInvalidAddr(t *testing.T) {
	for _, addr := range []string{
		"127.0.0.1:70000",
		"127.0.0.1:65536",
		"127.0.0.1:-1",
		"127.0.0.1:notaport",
		"127.0.0.1:",
		"127.0.0.1",
		"[::1",
		"::1:0",
	} {
		t.Run(addr, func(t *testing.T) {
			srv := &echo.Server{Addr: addr}
			err := listenAndServe(t, srv, 5*time.Second)
			if err == nil || errors.Is(err, echo.ErrServerClosed) {
				t.Fatalf("ListenAndServe = %v, want an address error", err)
			}
			if !strings.HasPrefix(err.Error(), "echo: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestListenAndServe(t *testing.T) {
	var logs watchedLog
	srv := &echo.Server{Addr: "127.0.0.1:0", Logger: debugLogger(&logs)}
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-done:
		case <-time.After(ioTimeout):
			t.Error("ListenAndServe did not return after Close")
		}
	})

	// The port is known only from the "starting up" line.
	const startingUp = "starting up on 127.0.0.1 port "
	log := logs.wait(t, "the starting up line", func(log string) bool { return strings.Contains(log, startingUp) })
	_, after, _ := strings.Cut(log, startingUp)
	port, _, _ := strings.Cut(after, `"`)
	cl := &echo.Client{Addr: "127.0.0.1:" + port, Timeout: ioTimeout}
	if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
		t.Fatal(err)
	}
	if err := shutdown(srv, 5*time.Second); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, echo.ErrServerClosed) {
			t.Errorf("ListenAndServe = %v, want ErrServerClosed", err)
		}
		done <- err // for the cleanup
	case <-time.After(ioTimeout):
		t.Fatal("ListenAndServe did not return after Shutdown")
	}
}

// TestFieldRanges: Serve and ListenAndServe refuse a BufferSize or a
// BusyPoll out of range (closing the listener), and serve at either end of
// the range.
func TestFieldRanges(t *testing.T) {
	// Logged, so that the server reads in BufferSize chunks.
	bufferSize := func(n int) func() *echo.Server {
		return func() *echo.Server { return &echo.Server{BufferSize: n, Logger: debugLogger(io.Discard)} }
	}
	// Quiet, so that event loops serve and poll.
	busyPoll := func(d time.Duration) func() *echo.Server {
		return func() *echo.Server { return &echo.Server{BusyPoll: d} }
	}
	tests := []struct {
		name    string
		server  func() *echo.Server
		wantErr error // nil: valid
	}{
		{"BufferSize -1", bufferSize(-1), echo.ErrInvalidBufferSize},
		{"BufferSize 0", bufferSize(0), nil},
		{"BufferSize 1", bufferSize(1), nil},
		{"BufferSize max", bufferSize(echo.MaxBufferSize), nil},
		{"BufferSize max+1", bufferSize(echo.MaxBufferSize + 1), echo.ErrInvalidBufferSize},
		{"BusyPoll -1ns", busyPoll(-1), echo.ErrInvalidBusyPoll},
		{"BusyPoll 0", busyPoll(0), nil},
		{"BusyPoll 1us", busyPoll(time.Microsecond), nil},
		{"BusyPoll max", busyPoll(echo.MaxBusyPoll), nil},
		{"BusyPoll max+1ns", busyPoll(echo.MaxBusyPoll + 1), echo.ErrInvalidBusyPoll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("Serve", func(t *testing.T) {
				ln := listenLocal(t)
				s := serve(t, tt.server(), ln)
				if tt.wantErr != nil {
					if err := s.wait(t, ioTimeout); !errors.Is(err, tt.wantErr) {
						t.Fatalf("Serve = %v, want %v", err, tt.wantErr)
					}
					if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
						t.Errorf("Serve did not close the listener: Accept = %v", err)
					}
					return
				}
				cl := &echo.Client{Addr: ln.Addr().String(), Timeout: ioTimeout}
				var got bytes.Buffer
				if _, err := cl.Send(t.Context(), seedMessages, &got); err != nil || got.String() != seedEcho {
					t.Fatalf("Send = %q, %v; want %q", got.String(), err, seedEcho)
				}
			})
			if tt.wantErr == nil {
				return
			}
			t.Run("ListenAndServe", func(t *testing.T) {
				srv := tt.server()
				srv.Addr = "127.0.0.1:0"
				if err := listenAndServe(t, srv, 5*time.Second); !errors.Is(err, tt.wantErr) {
					t.Fatalf("ListenAndServe = %v, want %v", err, tt.wantErr)
				}
			})
		})
	}
}

// TestDataLoggingReadsBufferSize: when data is logged, each "received"
// line is one read of at most BufferSize bytes, as in the seed.
func TestDataLoggingReadsBufferSize(t *testing.T) {
	for _, size := range []int{1, 16, 128} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var logs syncBuffer
			srv := &echo.Server{BufferSize: size, Logger: debugLogger(&logs)}
			ts := echotest.NewServer(t, srv)
			data := randomBytes(5, 1000)
			cl := &echo.Client{Addr: ts.Addr, Timeout: ioTimeout}
			if _, err := cl.Send(t.Context(), [][]byte{data}, nil); err != nil {
				t.Fatal(err)
			}
			if err := shutdown(srv, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			var received []byte
			for _, l := range parseLog(t, logs.String()) {
				lit, ok := strings.CutPrefix(l.Message, "received ")
				if !ok {
					continue
				}
				chunk, err := unquote(lit)
				if err != nil {
					t.Fatal(err)
				}
				if len(chunk) > size {
					t.Errorf("one read logged %d bytes; want at most BufferSize %d", len(chunk), size)
				}
				received = append(received, chunk...)
			}
			if !bytes.Equal(received, data) {
				t.Errorf("received lines add up to %d bytes differing at %d; want the %d sent", len(received), firstDiff(received, data), len(data))
			}
		})
	}
}

// flakyListener fails its first Accept calls with errs, then accepts.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func TestServeRetriesTransientAcceptErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ECONNABORTED} {
		t.Run(errno.Error(), func(t *testing.T) {
			var logs syncBuffer
			srv := &echo.Server{Logger: zerolog.New(&logs)}
			ln := listenLocal(t)
			acceptErr := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", errno)}
			serve(t, srv, &flakyListener{Listener: ln, errs: []error{acceptErr, acceptErr, acceptErr}})

			cl := &echo.Client{Addr: ln.Addr().String(), Timeout: ioTimeout}
			if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
				t.Fatalf("Send after transient accept errors: %v", err)
			}
			if err := shutdown(srv, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			// Warnings are rate-limited; the first is always logged, and
			// the recovery line counts every error.
			warnings, recovered := 0, false
			for _, l := range parseLog(t, logs.String()) {
				switch {
				case l.Level == "warn" && l.Logger == "main" && strings.HasPrefix(l.Message, "accept error:"):
					warnings++
					if !strings.Contains(l.Error, errno.Error()) {
						t.Errorf("accept warning has error %q, want %q", l.Error, errno.Error())
					}
				case l.Logger == "main" && strings.HasPrefix(l.Message, "accepting again"):
					recovered = true
					if !strings.Contains(l.Message, "after 3 accept errors") {
						t.Errorf("recovery line %q, want it to count 3 errors", l.Message)
					}
				}
			}
			if warnings == 0 || (warnings < 3 && !recovered) {
				t.Errorf("%d accept warnings and recovered %v; want the errors logged:\n%s", warnings, recovered, logs.String())
			}
		})
	}
}

// temporaryError is a wrapped listener's own accept error that says it is
// temporary, as net/http's Serve retries.
type temporaryError struct{}

func (temporaryError) Error() string   { return "temporary failure" }
func (temporaryError) Timeout() bool   { return false }
func (temporaryError) Temporary() bool { return true }

// TestServeRetriesTemporaryNetError: an accept error that says it is
// temporary is retried, as net/http retries it; it ended Serve.
func TestServeRetriesTemporaryNetError(t *testing.T) {
	ln := listenLocal(t)
	srv := &echo.Server{}
	serve(t, srv, &flakyListener{Listener: ln, errs: []error{temporaryError{}, temporaryError{}}})
	cl := &echo.Client{Addr: ln.Addr().String(), Timeout: ioTimeout}
	if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
		t.Fatalf("Send after temporary accept errors: %v", err)
	}
}

func TestServePermanentAcceptError(t *testing.T) {
	errBroken := errors.New("listener broke")
	ln := listenLocal(t)
	srv := &echo.Server{}
	s := serve(t, srv, &flakyListener{Listener: ln, errs: []error{errBroken}})
	if err := s.wait(t, ioTimeout); !errors.Is(err, errBroken) || errors.Is(err, echo.ErrServerClosed) {
		t.Errorf("Serve = %v, want the accept error", err)
	}
}

// TestServeListenerClosedElsewhere: a listener closed by its owner, not by
// Shutdown, ends Serve with net.ErrClosed on either engine, and its socket
// stops accepting (the event loops accept on a duplicate of it, which
// they must close too).
func TestServeListenerClosedElsewhere(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ln := listenLocal(t)
			s := serve(t, v.server(nil), v.wrap(ln))
			roundTrip(t, dial(t, ln.Addr().String()), []byte("x"))
			ln.Close()
			if err := s.wait(t, ioTimeout); !errors.Is(err, net.ErrClosed) || errors.Is(err, echo.ErrServerClosed) {
				t.Errorf("Serve after its listener was closed = %v, want net.ErrClosed", err)
			}
			waitRefused(t, ln.Addr().String())
		})
	}
}

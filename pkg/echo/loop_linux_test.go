package echo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/rs/zerolog"
)

// TestEventLoopsServePlainTCP: which connections the event loops take. The
// echo tests run every variant, so both engines are proven on the same
// cases; this makes sure the variants really use the engine they name.
func TestEventLoopsServePlainTCP(t *testing.T) {
	tests := []struct {
		name   string
		server *echo.Server
		opaque bool // the listener hides its connections' descriptors
		loops  bool
	}{
		{"defaults", &echo.Server{}, false, true},
		{"busy polling", &echo.Server{BusyPoll: time.Millisecond}, false, true},
		{"info logging, limits", &echo.Server{Logger: zerolog.New(io.Discard).Level(zerolog.InfoLevel), MaxConns: 100, MaxConnsPerIP: 50}, false, true},
		{"debug logging", &echo.Server{Logger: zerolog.New(io.Discard).Level(zerolog.DebugLevel)}, false, true},
		{"idle timeout", &echo.Server{IdleTimeout: time.Minute}, false, true},
		{"write timeout", &echo.Server{WriteTimeout: time.Minute}, false, true},
		{"both timeouts, debug logging, BufferSize 7", &echo.Server{IdleTimeout: time.Minute, WriteTimeout: time.Minute,
			BufferSize: 7, Logger: zerolog.New(io.Discard).Level(zerolog.DebugLevel)}, false, true},
		{"WithoutLoops", echo.WithoutLoops(&echo.Server{}), false, false},
		{"wrapped listener", &echo.Server{}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listenLocal(t)
			serve(t, tt.server, hideFDs(ln, tt.opaque))
			const n = 3
			for range n {
				roundTrip(t, dial(t, ln.Addr().String()), []byte("which engine?"))
			}
			want := 0
			if tt.loops {
				want = n
			}
			if got := echo.LoopConns(tt.server); got != want {
				t.Errorf("%d of %d connections served by event loops, want %d", got, n, want)
			}
		})
	}
}

// TestBusyPollUnusedWarns: a server given BusyPoll says so at warn, once
// per listener, when that listener's connections are not served by event
// loops, where BusyPoll would do nothing.
func TestBusyPollUnusedWarns(t *testing.T) {
	const warning = "busy poll has no effect on"
	const poll = time.Millisecond
	tests := []struct {
		name   string
		server func(log zerolog.Logger) *echo.Server // log is at info
		opaque bool
		udp    bool // ServePacket rather than Serve
		warns  bool
	}{
		{"event loops", func(log zerolog.Logger) *echo.Server { return &echo.Server{BusyPoll: poll, Logger: log} }, false, false, false},
		{"idle timeout", func(log zerolog.Logger) *echo.Server {
			return &echo.Server{BusyPoll: poll, Logger: log, IdleTimeout: time.Minute}
		}, false, false, false},
		{"write timeout", func(log zerolog.Logger) *echo.Server {
			return &echo.Server{BusyPoll: poll, Logger: log, WriteTimeout: time.Minute}
		}, false, false, false},
		{"debug logging", func(log zerolog.Logger) *echo.Server {
			return &echo.Server{BusyPoll: poll, Logger: log.Level(zerolog.DebugLevel)}
		}, false, false, false},
		{"wrapped listener", func(log zerolog.Logger) *echo.Server { return &echo.Server{BusyPoll: poll, Logger: log} }, true, false, true},
		{"UDP", func(log zerolog.Logger) *echo.Server { return &echo.Server{BusyPoll: poll, Logger: log} }, false, true, true},
		{"no busy poll", func(log zerolog.Logger) *echo.Server { return &echo.Server{Logger: log, IdleTimeout: time.Minute} }, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			srv := tt.server(zerolog.New(&logs).Level(zerolog.InfoLevel))
			if tt.udp {
				addr, _ := servePacketLocal(t, srv, "udp", "127.0.0.1:0")
				udpRoundTrip(t, dialUDP(t, addr), []byte("warned?"))
			} else {
				ln := listenLocal(t)
				serve(t, srv, hideFDs(ln, tt.opaque))
				roundTrip(t, dial(t, ln.Addr().String()), []byte("warned?"))
			}
			got := strings.Count(logs.String(), warning)
			if want := map[bool]int{false: 0, true: 1}[tt.warns]; got != want {
				t.Errorf("%d warnings %q, want %d; logs:\n%s", got, warning, want, logs.String())
			}
		})
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// TestServeAfterShutdownLeaksNoDescriptor: Serve on a server already shut
// down returns ErrServerClosed and closes the listener and the duplicate
// of its socket that the event loops would have accepted on (each call
// used to leak that duplicate: 100 calls, 100 descriptors).
func TestServeAfterShutdownLeaksNoDescriptor(t *testing.T) {
	const calls = 100
	srv := &echo.Server{}
	if err := shutdown(srv, ioTimeout); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	for range calls {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Serve(ln); !errors.Is(err, echo.ErrServerClosed) {
			t.Fatalf("Serve after Shutdown = %v, want ErrServerClosed", err)
		}
	}
	// A few descriptors may come and go with the runtime; one a call
	// cannot.
	if after := openFDs(t); after-before >= calls/10 {
		t.Errorf("%d open descriptors before %d calls of Serve after Shutdown, %d after", before, calls, after)
	}
}

// TestTranscriptOfABulkEcho: with data logged and large reads
// (BufferSize 1 MiB) into a peer with a small receive window, every chunk
// is logged "received" when read and then "sent" with the same byte count
// before the next is read, and the lines add up to every byte, on both
// engines. (TestLoopTranscriptOfAPendingWrite makes a loop's write back
// stall for certain.)
func TestTranscriptOfABulkEcho(t *testing.T) {
	for _, engine := range []struct {
		name string
		set  func(*echo.Server) *echo.Server
	}{
		{"event loops", func(s *echo.Server) *echo.Server { return s }},
		{"goroutines", echo.WithoutLoops},
	} {
		t.Run(engine.name, func(t *testing.T) {
			var logs syncBuffer
			srv := engine.set(&echo.Server{BufferSize: 1 << 20, LogMaxBytes: 16, Logger: debugLogger(&logs)})
			ln := listenLocal(t)
			serve(t, srv, ln)
			c := dial(t, ln.Addr().String())
			// A small receive window, so that the server's writes back
			// of its large reads may stall.
			if err := c.SetReadBuffer(16 << 10); err != nil {
				t.Fatal(err)
			}
			msg := randomBytes(7, 2<<20)
			wrote := make(chan error, 1)
			go func() {
				c.SetWriteDeadline(time.Now().Add(ioTimeout))
				_, err := c.Write(msg)
				if err == nil {
					err = c.CloseWrite()
				}
				wrote <- err
			}()
			got, err := readAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo: %d of %d bytes, %v", len(got), len(msg), err)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			// The closing line follows the last "sent" (the engines log
			// it before they close the socket, which readAll saw).
			if !strings.Contains(logs.String(), `"message":"closing"`) {
				t.Fatalf("no closing line after the end of stream:\n%s", logs.String())
			}
			received, sent, pending, chunks := 0, 0, -1, 0
			for _, l := range parseLog(t, logs.String()) {
				if l.Bytes == nil {
					continue
				}
				n := *l.Bytes
				switch {
				case strings.HasPrefix(l.Message, "received "):
					if pending >= 0 {
						t.Fatalf("received %d bytes before the %d received last were sent", n, pending)
					}
					pending = n
					received += n
					chunks++
				case strings.HasPrefix(l.Message, "sent "):
					if n != pending {
						t.Fatalf("sent %d bytes after receiving %d", n, pending)
					}
					pending = -1
					sent += n
				}
			}
			if received != len(msg) || sent != len(msg) {
				t.Errorf("logged %d bytes received and %d sent in %d chunks, want %d each", received, sent, chunks, len(msg))
			}
		})
	}
}

// TestLoopsOutOfDescriptorsFallBack: a listener the event loops cannot
// take, because they cannot start or its socket cannot be duplicated for
// them (the process is out of descriptors), is served by goroutines, and
// Serve says so at warn; once descriptors are free again, the same
// Server's next listener is the loops'. It runs again in a child process,
// whose descriptor limit it lowers.
func TestLoopsOutOfDescriptorsFallBack(t *testing.T) {
	const child = "ECHOCTL_TEST_NOFILE_CHILD"
	if os.Getenv(child) != "1" {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoopsOutOfDescriptorsFallBack$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), child+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestLoopsOutOfDescriptorsFallBack")) {
			t.Fatalf("the child process: %v\n%s", err, out)
		}
		return
	}
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	restore := limit
	// Each loop takes three descriptors (epoll, eventfd, timerfd), and the
	// listener's duplicate one more: leave too few for each in turn.
	loopFDs := 3 * runtime.GOMAXPROCS(0)
	for _, free := range []int{0, 1, loopFDs - 1, loopFDs} {
		t.Run(fmt.Sprintf("%d free", free), func(t *testing.T) {
			ln := listenLocal(t)
			var log watchedLog
			srv := &echo.Server{Logger: zerolog.New(&log)}
			limit.Cur = 64
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
				t.Fatal(err)
			}
			var fill []*os.File
			for {
				f, err := os.Open(os.DevNull)
				if err != nil {
					if !errors.Is(err, syscall.EMFILE) {
						t.Fatal(err)
					}
					break
				}
				fill = append(fill, f)
			}
			for _, f := range fill[len(fill)-free:] {
				f.Close()
			}
			serve(t, srv, ln)
			log.wait(t, "the warning", func(log string) bool { return strings.Contains(log, "event loops cannot serve") })
			for _, f := range fill {
				f.Close()
			}
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &restore); err != nil {
				t.Fatal(err)
			}
			roundTrip(t, dial(t, ln.Addr().String()), []byte("served all the same"))
			if n := echo.LoopConns(srv); n != 0 {
				t.Errorf("%d connections served by event loops, want none", n)
			}
			warning := `"level":"warn","logger":"main","listener":"` + ln.Addr().String() + `","error":"`
			if !strings.Contains(log.String(), warning) || !strings.Contains(log.String(), "too many open files") {
				t.Errorf("the warning does not name the listener and the error:\n%s", log.String())
			}
			// Descriptors free again: the next listener is the loops'.
			next := listenLocal(t)
			serve(t, srv, next)
			roundTrip(t, dial(t, next.Addr().String()), []byte("the loops now"))
			if n := echo.LoopConns(srv); n != 1 {
				t.Errorf("%d connections of the next listener served by event loops, want 1", n)
			}
		})
	}
}

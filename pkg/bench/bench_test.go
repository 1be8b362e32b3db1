package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

// Short runs: every test here puts at most a second or two of load on a
// loopback server.
const (
	testWarmup   = 250 * time.Millisecond
	testDuration = 400 * time.Millisecond
	// grace is how long after Warmup+Duration a run may take to return:
	// not a speed target (make bench has those) but a bound that tells a
	// run that ends on time, however loaded the machine (make test runs
	// the packages side by side under the race detector on 2 cores: 1s
	// was exceeded there), from one that waits out a stalled server's
	// operations, whose tests give them a minute.
	grace = 10 * time.Second
)

// runTimed runs cfg and fails the test if Run takes longer than the run's
// length plus grace.
func runTimed(t *testing.T, ctx context.Context, cfg bench.Config) (*bench.Result, error) {
	t.Helper()
	start := time.Now()
	res, err := bench.Run(ctx, cfg)
	if took, limit := time.Since(start), cfg.Warmup+cfg.Duration+grace; took > limit {
		t.Errorf("Run took %v, more than warmup+duration+%v = %v", took, grace, limit)
	}
	return res, err
}

func TestRunModes(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	tests := []struct {
		name string
		cfg  bench.Config
		// bytesPerMessage, if not zero, is what each echo carries.
		bytesPerMessage int64
	}{
		{"pingpong one connection", bench.Config{Mode: bench.ModePingPong}, 128},
		{"pingpong many connections", bench.Config{Mode: bench.ModePingPong, Conns: 20, Size: 64}, 64},
		{"pingpong 16 KiB", bench.Config{Mode: bench.ModePingPong, Conns: 2, Size: 16 << 10}, 16 << 10},
		{"pingpong pipelined", bench.Config{Mode: bench.ModePingPong, Conns: 3, Size: 100, Pipeline: 8}, 100},
		{"stream", bench.Config{Mode: bench.ModeStream, Conns: 2, Chunk: 16 << 10}, 0},
		{"stream odd chunk", bench.Config{Mode: bench.ModeStream, Chunk: 1000}, 0},
		{"connrate", bench.Config{Mode: bench.ModeConnRate, Conns: 2}, 46},
		{"connrate custom parts", bench.Config{Mode: bench.ModeConnRate, Parts: []string{"a", "bc"}}, 3},
		{"idle", bench.Config{Mode: bench.ModeIdle, Conns: 200}, 1},
		{"pingpong busy-polling", bench.Config{Mode: bench.ModePingPong, BusyPoll: time.Millisecond}, 128},
		{"pingpong pipelined busy-polling", bench.Config{Mode: bench.ModePingPong, Pipeline: 8, BusyPoll: time.Millisecond}, 128},
		{"stream busy-polling", bench.Config{Mode: bench.ModeStream, Chunk: 16 << 10, BusyPoll: time.Millisecond}, 0},
		{"connrate busy-polling", bench.Config{Mode: bench.ModeConnRate, BusyPoll: time.Millisecond}, 46},
		{"idle busy-polling", bench.Config{Mode: bench.ModeIdle, Conns: 1, BusyPoll: time.Millisecond}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Addr = srv.Addr
			cfg.Warmup, cfg.Duration = testWarmup, testDuration
			cfg.ServerPID = os.Getpid() // the server runs in this process
			res, err := runTimed(t, context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Messages == 0 || res.Bytes == 0 {
				t.Fatalf("no echo: %+v", res)
			}
			// The figures are read while the load runs: at either end of
			// the window each connection may have messages counted in bytes
			// but not yet in messages, so the difference of two readings
			// may be off that much either way.
			if bpm := tt.bytesPerMessage; bpm != 0 {
				slack := int64(max(cfg.Conns, 1)*max(cfg.Pipeline, 1)) * bpm
				if diff := res.Bytes - res.Messages*bpm; diff < -slack || diff > slack {
					t.Errorf("Bytes = %d, want Messages (%d) × %d (± at most %d in flight)", res.Bytes, res.Messages, bpm, slack)
				}
			}
			if res.Errors.Total() != 0 || res.FirstError != "" || res.FirstMismatch != nil {
				t.Errorf("errors: %+v %q %+v", res.Errors, res.FirstError, res.FirstMismatch)
			}
			if res.Latency.Count == 0 || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
				t.Errorf("latency: %+v", res.Latency)
			}
			// The messages counted and the latencies timed are the same
			// echoes: those verified in the measured window.
			if res.Latency.Count != res.Messages {
				t.Errorf("Latency.Count = %d, Messages = %d: want the same echoes", res.Latency.Count, res.Messages)
			}
			if res.Interrupted || res.Duration != testDuration.Seconds() {
				t.Errorf("Interrupted = %v, Duration = %v; want false, %v", res.Interrupted, res.Duration, testDuration.Seconds())
			}
			if res.Server == nil || res.Server.PID != os.Getpid() {
				t.Fatalf("Server = %+v", res.Server)
			}
			switch cfg.Mode {
			case bench.ModeIdle:
				if res.Held != cfg.Conns || res.Messages != int64(cfg.Conns) {
					t.Errorf("Held = %d, Messages = %d, want %d", res.Held, res.Messages, cfg.Conns)
				}
				if res.Server.RSSBefore <= 0 || res.Server.RSSHeld <= 0 {
					t.Errorf("RSS not measured: %+v", res.Server)
				}
			default:
				if res.MessagesPerSec <= 0 || res.MBPerSec <= 0 {
					t.Errorf("rates: %+v", res)
				}
				// Echoes count by when they were verified, so the window is
				// exactly the configured one.
				if res.Elapsed != testDuration.Seconds() || res.WarmupElapsed != testWarmup.Seconds() {
					t.Errorf("Elapsed = %vs after %vs, want %v after %v", res.Elapsed, res.WarmupElapsed, testDuration, testWarmup)
				}
			}
			if cfg.Mode == bench.ModeConnRate && (res.ConnsPerSec <= 0 || res.Connects < res.Messages) {
				t.Errorf("connrate: %d connects, %.0f/s for %d cycles", res.Connects, res.ConnsPerSec, res.Messages)
			}
		})
	}
}

// TestRunRate checks that a run with a Rate sends no more than its
// schedule allows (and not far fewer): pingpong, pipelined or not, and
// connrate.
func TestRunRate(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	tests := []struct {
		name string
		cfg  bench.Config
		says string
	}{
		{"pingpong", bench.Config{}, "at 200 messages/s"},
		{"pingpong pipelined", bench.Config{Pipeline: 4}, "at 200 messages/s"},
		{"connrate", bench.Config{Mode: bench.ModeConnRate}, "at 200 cycles/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const rate, conns = 200.0, 4
			duration := 500 * time.Millisecond
			cfg := tt.cfg
			cfg.Addr, cfg.Conns, cfg.Rate, cfg.Duration = srv.Addr, conns, rate, duration
			res, err := runTimed(t, context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			// Each connection's schedule holds at most duration/interval+1
			// messages (the first is due at once, or within one interval).
			scheduled := int64(rate * duration.Seconds())
			if most, least := scheduled+conns, scheduled/4; res.Messages > most || res.Messages < least {
				t.Errorf("%d messages in %v at %v/s, want from %d to %d", res.Messages, duration, cfg.Rate, least, most)
			}
			if res.Rate != rate || res.Errors.Total() != 0 {
				t.Errorf("Rate = %v, errors %+v; want %v, none", res.Rate, res.Errors, rate)
			}
			var table strings.Builder
			if err := res.WriteTable(&table); err != nil || !strings.Contains(table.String(), tt.says) {
				t.Errorf("table (%v) does not say the rate:\n%s", err, table.String())
			}
		})
	}
}

// TestRunRateTooSmall checks that a rate too small for a message in the
// run (whose interval would overflow a Duration) is refused at once, as
// an invalid configuration, rather than run to measure nothing.
func TestRunRateTooSmall(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	cfg := bench.Config{Addr: srv.Addr, Conns: 3, Rate: 1e-15, Duration: 300 * time.Millisecond}
	res, err := runTimed(t, context.Background(), cfg)
	if !errors.Is(err, bench.ErrInvalidConfig) || !strings.Contains(err.Error(), "rate 1e-15 with duration 300ms") || res != nil {
		t.Fatalf("Run: %v, %+v; want an invalid rate, and no result", err, res)
	}
}

// TestRunRateWithoutWarmup: a run at a rate measures Rate×Duration
// messages, with or without a warmup: without one, the first tick fell on
// the start of the window, before the connection was open, and --rate 1
// --duration 1s measured nothing. The ticks fall mid-tick, 125ms from
// either end of the window.
func TestRunRateWithoutWarmup(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	for _, warmup := range []time.Duration{0, 300 * time.Millisecond} {
		cfg := bench.Config{Addr: srv.Addr, Rate: 4, Duration: time.Second, Warmup: warmup}
		res, err := runTimed(t, context.Background(), cfg)
		if err != nil {
			t.Fatalf("warmup %v: Run: %v", warmup, err)
		}
		if res.Messages != 4 {
			t.Errorf("warmup %v: %d messages measured at 4/s in 1s, want 4", warmup, res.Messages)
		}
	}
}

// TestRunRateCountsStalls checks the correction for coordinated omission:
// when the server stalls, the messages that fell due meanwhile count the
// time they waited, so the stall shows in the percentiles, not only in the
// one message the server sat on.
func TestRunRateCountsStalls(t *testing.T) {
	const stall = 300 * time.Millisecond
	addr := serve(t, func(c net.Conn, stop <-chan struct{}) {
		buf := make([]byte, bench.DefaultSize)
		for n := 1; ; n++ {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if n == 5 {
				select {
				case <-time.After(stall):
				case <-stop:
					return
				}
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	// One message every 10ms for a second: the ~30 due during the stall
	// wait up to 300ms each, a quarter of all, so p90 is well into the
	// stall. Timed from their writes instead, only one message is slow.
	cfg := bench.Config{Addr: addr, Rate: 100, Duration: time.Second}
	res, err := runTimed(t, context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Latency.Max < float64((stall*8/10).Microseconds()) || res.Latency.P90 < float64((stall/6).Microseconds()) {
		t.Errorf("latency %+v: want max near %v and p90 above %v", res.Latency, stall, stall/6)
	}
}

// TestRunRateCountsStallsPastOpTimeout: a stall longer than OpTimeout
// fails the message it holds, and the messages due meanwhile are sent on
// the next connection, late, counted from when they were due: none goes
// missing from the run, and the wait shows in the percentiles.
func TestRunRateCountsStallsPastOpTimeout(t *testing.T) {
	const opTimeout = 200 * time.Millisecond
	var echoes atomic.Int64
	addr := serve(t, func(c net.Conn, stop <-chan struct{}) {
		buf := make([]byte, bench.DefaultSize)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if echoes.Add(1) == 5 { // the fifth message of the run, once
				select {
				case <-time.After(3 * opTimeout):
				case <-stop:
				}
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	// One message every 10ms for a second: ~20 fall due while the fifth
	// waits for its timeout.
	cfg := bench.Config{Addr: addr, Rate: 100, Duration: time.Second, OpTimeout: opTimeout}
	res, err := runTimed(t, context.Background(), cfg)
	if !errors.Is(err, bench.ErrRunFailed) {
		t.Fatalf("Run: %v, want ErrRunFailed for the timeout", err)
	}
	if res.Errors.Timeout != 1 || res.Errors.Total() != 1 {
		t.Errorf("errors %+v, want one timeout", res.Errors)
	}
	if due := int64(cfg.Rate * cfg.Duration.Seconds()); res.Messages+1 < due*9/10 {
		t.Errorf("%d messages and 1 timeout, want about %d: those due during the timeout went missing", res.Messages, due)
	}
	if res.Latency.Max < float64((opTimeout / 2).Microseconds()) {
		t.Errorf("latency %+v: want the timeout's wait in it (max above %v)", res.Latency, opTimeout/2)
	}
}

// brokenServer echoes everything except the byte at offset flipAt of each
// connection, which it changes.
func brokenServer(t *testing.T, flipAt int64) string {
	t.Helper()
	return serve(t, func(c net.Conn, _ <-chan struct{}) {
		buf := make([]byte, 4096)
		var off int64
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if flipAt >= off && flipAt < off+int64(n) {
					buf[flipAt-off] ^= 0x20
				}
				off += int64(n)
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// serve runs handle on every connection accepted on a loopback listener
// until the test ends, and returns the listener's address.
func serve(t *testing.T, handle func(c net.Conn, stop <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, ln, handle)
	return ln.Addr().String()
}

// serveListener runs handle on every connection accepted on ln until the
// test ends.
// stop is closed when the test ends.
func serveListener(t *testing.T, ln net.Listener, handle func(c net.Conn, stop <-chan struct{})) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c, stop)
			})
		}
	})
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func TestRunMismatch(t *testing.T) {
	seed := strings.Join(bench.SeedParts, "")
	tests := []struct {
		name   string
		cfg    bench.Config
		flipAt int64
		sent   byte
	}{
		// Connection 0's data is the bytes 0, 1, 2, ..., 250, 0, 1, ...
		{"pingpong second message", bench.Config{Mode: bench.ModePingPong, Size: 128}, 130, 130},
		{"pingpong first byte", bench.Config{Mode: bench.ModePingPong, Size: 16}, 0, 0},
		{"pipelined", bench.Config{Mode: bench.ModePingPong, Size: 10, Pipeline: 4}, 25, 25},
		{"stream", bench.Config{Mode: bench.ModeStream, Chunk: 1000}, 3000, byte(3000 % 251)},
		{"connrate", bench.Config{Mode: bench.ModeConnRate}, 5, seed[5]},
		{"idle", bench.Config{Mode: bench.ModeIdle}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Addr = brokenServer(t, tt.flipAt)
			cfg.Warmup, cfg.Duration = testWarmup, testDuration
			res, err := runTimed(t, context.Background(), cfg)
			var mm *bench.MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("Run: %v, want a *bench.MismatchError", err)
			}
			var em *echo.MismatchError
			if !errors.As(err, &em) {
				t.Fatalf("%v does not unwrap to *echo.MismatchError", err)
			}
			if mm.Conn != 0 || em.Offset != tt.flipAt || em.Sent != tt.sent || em.Received != tt.sent^0x20 {
				t.Errorf("mismatch on connection %d at %d: sent %q received %q; want 0 at %d: %q, %q",
					mm.Conn, em.Offset, em.Sent, em.Received, tt.flipAt, tt.sent, tt.sent^0x20)
			}
			if res == nil || res.Errors.Mismatch == 0 || res.FirstMismatch == nil {
				t.Fatalf("result: %+v", res)
			}
			if fm := res.FirstMismatch; fm.Offset != tt.flipAt || fm.Expected != echo.Quote([]byte{tt.sent}) || fm.Got != echo.Quote([]byte{tt.sent ^ 0x20}) {
				t.Errorf("FirstMismatch = %+v", fm)
			}
		})
	}
}

func TestRunShortEcho(t *testing.T) {
	// The server echoes 10 bytes of each connection, then closes its side
	// and discards the rest.
	addr := serve(t, func(c net.Conn, _ <-chan struct{}) {
		io.CopyN(c, c, 10)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
	for _, mode := range []bench.Mode{bench.ModePingPong, bench.ModeStream, bench.ModeConnRate} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := bench.Config{Addr: addr, Mode: mode, Size: 64, Chunk: 64, Warmup: testWarmup, Duration: testDuration}
			res, err := runTimed(t, context.Background(), cfg)
			if !errors.Is(err, bench.ErrRunFailed) {
				t.Fatalf("Run: %v, want ErrRunFailed", err)
			}
			if res.Errors.Other == 0 || !strings.Contains(res.FirstError, "closed the connection after echoing 10 bytes") {
				t.Errorf("errors %+v, first %q", res.Errors, res.FirstError)
			}
		})
	}
}

// TestRunResetMidEcho: a server that resets its connections in the middle
// of the echo is counted as resets in every mode, also when one goroutine
// writes while another reads (stream, pipelined pingpong), where the
// kernel tells the reset to the writer and the reader then sees only an
// end of stream.
func TestRunResetMidEcho(t *testing.T) {
	addr := serve(t, func(c net.Conn, _ <-chan struct{}) {
		io.CopyN(c, c, 64<<10)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	tests := []struct {
		name string
		cfg  bench.Config
	}{
		{"stream", bench.Config{Mode: bench.ModeStream, Chunk: 16 << 10}},
		{"pipelined", bench.Config{Mode: bench.ModePingPong, Size: 4 << 10, Pipeline: 8}},
		{"pingpong", bench.Config{Mode: bench.ModePingPong, Size: 4 << 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Addr, cfg.Conns, cfg.Warmup, cfg.Duration = addr, 2, testWarmup, testDuration
			res, err := runTimed(t, context.Background(), cfg)
			if !errors.Is(err, bench.ErrRunFailed) {
				t.Fatalf("Run: %v, want ErrRunFailed", err)
			}
			if res.Errors.Reset == 0 || res.Errors.Other != 0 {
				t.Errorf("errors %+v, want resets only; first %q", res.Errors, res.FirstError)
			}
		})
	}
}

// stallServer accepts connections and never reads from them.
func stallServer(t *testing.T) string {
	t.Helper()
	return serve(t, func(_ net.Conn, stop <-chan struct{}) { <-stop })
}

func TestRunEndsOnTimeWhenServerStalls(t *testing.T) {
	tests := []struct {
		name      string
		cfg       bench.Config
		opTimeout time.Duration
		wantKind  string // "" for no error but ErrRunFailed for no echo
	}{
		{"pingpong long op timeout", bench.Config{Mode: bench.ModePingPong, Conns: 4}, time.Minute, ""},
		{"pingpong short op timeout", bench.Config{Mode: bench.ModePingPong, Conns: 4}, 150 * time.Millisecond, "timeout"},
		{"pipelined", bench.Config{Mode: bench.ModePingPong, Pipeline: 16}, time.Minute, ""},
		{"stream", bench.Config{Mode: bench.ModeStream, Conns: 2, Chunk: 1 << 20}, time.Minute, ""},
		{"stream short op timeout", bench.Config{Mode: bench.ModeStream, Chunk: 1 << 20}, 150 * time.Millisecond, "timeout"},
		{"connrate", bench.Config{Mode: bench.ModeConnRate, Conns: 4}, time.Minute, ""},
		{"idle", bench.Config{Mode: bench.ModeIdle, Conns: 10}, time.Minute, ""},
		// A busy-polling read still ends at its deadline.
		{"pingpong busy-polling short op timeout", bench.Config{Mode: bench.ModePingPong, BusyPoll: bench.MaxBusyPoll}, 150 * time.Millisecond, "timeout"},
		{"pingpong busy-polling", bench.Config{Mode: bench.ModePingPong, BusyPoll: time.Millisecond}, time.Minute, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Addr = stallServer(t)
			cfg.Warmup, cfg.Duration, cfg.OpTimeout = testWarmup, testDuration, tt.opTimeout
			res, err := runTimed(t, context.Background(), cfg)
			if !errors.Is(err, bench.ErrRunFailed) {
				t.Fatalf("Run: %v, want ErrRunFailed", err)
			}
			if tt.wantKind == "timeout" && res.Errors.Timeout == 0 {
				t.Errorf("no timeout counted: %+v", res.Errors)
			}
			if tt.wantKind == "" && res.Errors.Total() != 0 {
				t.Errorf("errors counted for operations cut by the end of the run: %+v (%s)", res.Errors, res.FirstError)
			}
			if want := "and none failed: an operation counts as a timeout only after the operation timeout, 1m,"; tt.wantKind == "" &&
				cfg.Mode != bench.ModeIdle && !strings.Contains(err.Error(), want) {
				t.Errorf("Run: %v, want it to say %q", err, want)
			}
		})
	}
}

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRunNoServer checks that a run against a port nothing listens on
// ends with ErrNoServer after about a second of retries, not after its
// whole length, whatever its warmup and mode.
func TestRunNoServer(t *testing.T) {
	addr := freeAddr(t)
	for _, tt := range []struct {
		name string
		cfg  bench.Config
	}{
		{"pingpong", bench.Config{Conns: 3, Warmup: time.Second}},
		{"no warmup", bench.Config{Conns: 3}},
		{"long warmup", bench.Config{Conns: 3, Warmup: 20 * time.Second}},
		{"connrate", bench.Config{Mode: bench.ModeConnRate, Conns: 2}},
		{"idle", bench.Config{Mode: bench.ModeIdle, Conns: 10}},
		// Shorter than the second of retries: it still ends so.
		{"one second, no warmup", bench.Config{Conns: 3, Duration: time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Addr = addr
			if cfg.Duration == 0 {
				cfg.Duration = 30 * time.Second
			}
			start := time.Now()
			res, err := bench.Run(context.Background(), cfg)
			// Generous: the run retries for a second; the old behaviour
			// took the whole run (30s and more).
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Run took %v against a closed port", took)
			}
			if !errors.Is(err, bench.ErrNoServer) || res != nil {
				t.Fatalf("Run: %v, %+v; want ErrNoServer and no Result", err, res)
			}
			for _, want := range []string{"no connection could be opened to " + addr, "connection refused"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestRunRefusedAfterServerSeen checks that a server that has been reached
// once and then stops is not taken for one that was never there: its
// refused connects are counted as errors, and the run goes on to its end.
func TestRunRefusedAfterServerSeen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Accept one connection, echo nothing, then close it and stop
	// listening: every later connect is refused.
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err == nil {
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	cfg := bench.Config{Addr: ln.Addr().String(), Warmup: 0, Duration: 1500 * time.Millisecond}
	res, err := runTimed(t, context.Background(), cfg)
	if !errors.Is(err, bench.ErrRunFailed) {
		t.Fatalf("Run: %v, want ErrRunFailed", err)
	}
	if res.Errors.Refused == 0 || res.Connects != 1 {
		t.Errorf("errors %+v after %d connects, want refused connects counted after 1", res.Errors, res.Connects)
	}
}

func TestRunRetriesRefusedConnectsInWarmup(t *testing.T) {
	// The server starts listening a little after the run starts; the
	// connects refused until then are retried, not counted.
	addr := freeAddr(t)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		time.Sleep(150 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			return
		}
		serveListener(t, ln, func(c net.Conn, _ <-chan struct{}) { io.Copy(c, c) })
	}()
	cfg := bench.Config{Addr: addr, Conns: 100, Warmup: 600 * time.Millisecond, Duration: testDuration}
	res, err := runTimed(t, context.Background(), cfg)
	<-listening
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ConnectRetries == 0 || res.Connects != 100 {
		t.Errorf("%d connects, %d retries", res.Connects, res.ConnectRetries)
	}
}

func TestRunManyConnections(t *testing.T) {
	// The connections open spread over the first half of the warmup; the
	// second half leaves room for a machine busy with other tests.
	srv := echotest.NewServer(t, nil)
	cfg := bench.Config{Addr: srv.Addr, Conns: 300, Warmup: time.Second, Duration: 200 * time.Millisecond}
	res, err := runTimed(t, context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Connects != 300 || res.OpenAtStart != 300 {
		t.Errorf("Connects = %d, OpenAtStart = %d, want 300", res.Connects, res.OpenAtStart)
	}
}

// TestRunCancel checks that a run whose context is cancelled mid-run
// returns at once with ErrInterrupted and a Result that says so, with the
// time really measured.
func TestRunCancel(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	const warmup = 300 * time.Millisecond
	for _, mode := range bench.Modes {
		t.Run(string(mode), func(t *testing.T) {
			const life = 800 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(life, cancel) // the interruption under test
			start := time.Now()
			res, err := bench.Run(ctx, bench.Config{Addr: srv.Addr, Mode: mode, Conns: 4, Warmup: warmup, Duration: time.Minute})
			if took := time.Since(start); took > life+grace {
				t.Errorf("Run returned %v after its context ended", took-life)
			}
			if !errors.Is(err, bench.ErrInterrupted) || res == nil {
				t.Fatalf("Run: %v, %v; want ErrInterrupted and a Result", err, res)
			}
			if !strings.Contains(err.Error(), "of the 60.00s to measure") {
				t.Errorf("error %q does not say how much was measured", err)
			}
			if !res.Interrupted || res.Duration != 60 {
				t.Errorf("Interrupted = %v, Duration = %v; want true, 60", res.Interrupted, res.Duration)
			}
			// The window ends at the interruption: it measured at most
			// what the run lived, and never the configured minute.
			measurable := life
			if mode != bench.ModeIdle {
				measurable -= warmup
				if res.WarmupElapsed != warmup.Seconds() {
					t.Errorf("WarmupElapsed = %v, want the whole %v", res.WarmupElapsed, warmup)
				}
			}
			if res.Elapsed <= 0 || res.Elapsed > (measurable+grace).Seconds() {
				t.Errorf("Elapsed = %v, want more than 0, about %v", res.Elapsed, measurable)
			}
			if res.Messages == 0 || res.Latency.Count != res.Messages {
				t.Errorf("Messages = %d, Latency.Count = %d: want the echoes measured until the interruption", res.Messages, res.Latency.Count)
			}
			var table strings.Builder
			if err := res.WriteTable(&table); err != nil || !strings.Contains(table.String(), "INTERRUPTED") || !strings.Contains(table.String(), "of 60.00s") {
				t.Errorf("table (%v) does not say the run was interrupted:\n%s", err, table.String())
			}
			b, err := json.Marshal(res)
			if err != nil || !strings.Contains(string(b), `"interrupted":true`) {
				t.Errorf("JSON (%v) lacks \"interrupted\":true: %s", err, b)
			}
		})
	}
}

// TestRunCancelInWarmup checks a run interrupted before it began to
// measure: nothing measured, and the warmup's real length.
func TestRunCancelInWarmup(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	const life = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(life, cancel)
	res, err := bench.Run(ctx, bench.Config{Addr: srv.Addr, Conns: 2, Warmup: time.Minute, Duration: time.Minute})
	if !errors.Is(err, bench.ErrInterrupted) || res == nil {
		t.Fatalf("Run: %v, %v; want ErrInterrupted and a Result", err, res)
	}
	if !strings.Contains(err.Error(), "in the warmup") {
		t.Errorf("error %q does not say it was in the warmup", err)
	}
	if !res.Interrupted || res.Elapsed != 0 || res.Messages != 0 || res.Latency.Count != 0 {
		t.Errorf("Interrupted %v, Elapsed %v, Messages %d, Latency.Count %d; want true and nothing measured", res.Interrupted, res.Elapsed, res.Messages, res.Latency.Count)
	}
	if res.WarmupElapsed <= 0 || res.WarmupElapsed > (life+grace).Seconds() {
		t.Errorf("WarmupElapsed = %v, want about %v, not the %vs configured", res.WarmupElapsed, life, res.Warmup)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil || !strings.Contains(table.String(), "nothing: INTERRUPTED") {
		t.Errorf("table (%v) does not say the run was interrupted:\n%s", err, table.String())
	}
}

func TestRunInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  bench.Config
		want string
	}{
		{"mode", bench.Config{Mode: "flood"}, `mode "flood": must be one of pingpong, stream, connrate, idle`},
		{"address", bench.Config{Addr: "localhost"}, "missing port"},
		{"port 0", bench.Config{Addr: "127.0.0.1:0"}, "port 0"},
		{"conns", bench.Config{Conns: -1}, "conns -1"},
		{"conns over the file limit", bench.Config{Conns: bench.MaxConns}, "open files"},
		{"size", bench.Config{Size: bench.MaxSize + 1}, "size"},
		{"pipeline", bench.Config{Pipeline: -2}, "pipeline"},
		{"chunk", bench.Config{Chunk: -1}, "chunk"},
		{"duration", bench.Config{Duration: -time.Second}, "duration"},
		{"warmup", bench.Config{Warmup: -time.Second}, "warmup"},
		{"op timeout", bench.Config{OpTimeout: -time.Second}, "op-timeout -1s"},
		{"server pid", bench.Config{ServerPID: -1}, "server-pid -1"},
		{"server gone", bench.Config{ServerPID: 1 << 30}, "server-pid 1073741824: no process to measure"},
		{"empty parts", bench.Config{Mode: bench.ModeConnRate, Parts: []string{}}, "parts"},
		{"rate", bench.Config{Rate: -1}, "rate -1"},
		{"rate infinite", bench.Config{Rate: math.Inf(1)}, "rate +Inf"},
		{"rate in stream mode", bench.Config{Mode: bench.ModeStream, Rate: 10}, "only pingpong and connrate"},
		{"busy poll negative", bench.Config{BusyPoll: -time.Microsecond}, "busy-poll -1µs"},
		{"busy poll too long", bench.Config{BusyPoll: bench.MaxBusyPoll + 1}, "busy-poll 100.000001ms"},
		{"busy poll with more connections than CPUs", bench.Config{BusyPoll: time.Millisecond, Conns: runtime.GOMAXPROCS(0) + 1}, "busy poll with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := bench.Run(context.Background(), tt.cfg)
			if !errors.Is(err, bench.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want ErrInvalidConfig about %q", err, tt.want)
			}
			if res != nil {
				t.Errorf("Result = %+v, want nil", res)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range bench.Modes {
		if got, err := bench.ParseMode(string(m)); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	if _, err := bench.ParseMode("PINGPONG"); !errors.Is(err, bench.ErrInvalidConfig) {
		t.Errorf("ParseMode(PINGPONG) = %v", err)
	}
}

func TestProgress(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	var mu sync.Mutex
	var reports []bench.Progress
	cfg := bench.Config{Addr: srv.Addr, Conns: 2, Warmup: 500 * time.Millisecond, Duration: time.Second,
		Progress: func(p bench.Progress) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, p)
		}}
	if _, err := runTimed(t, context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 {
		t.Fatalf("%d progress reports in 1.5s, want 1 (one a second): %+v", len(reports), reports)
	}
	p := reports[0]
	if p.Warmup || p.Open != 2 || p.Messages == 0 || p.MessagesPerSec <= 0 || p.Elapsed < time.Second {
		t.Errorf("progress: %+v", p)
	}
}

func TestResultOutput(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	for _, mode := range bench.Modes {
		t.Run(string(mode), func(t *testing.T) {
			cfg := bench.Config{Addr: srv.Addr, Mode: mode, Conns: 2, Warmup: testWarmup, Duration: 200 * time.Millisecond, ServerPID: os.Getpid()}
			res, err := runTimed(t, context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantRows := []string{"mode", string(mode), srv.Addr, "latency", "p99.9", "errors", "none", "server cpu"}
			if runtime.GOOS != "windows" && runtime.GOOS != "plan9" {
				// The load's own CPU: here the server's too, in process.
				if res.LoadCPU <= 0 || res.LoadCPUPercent <= 0 {
					t.Errorf("load CPU %v s, %v%%: want both measured", res.LoadCPU, res.LoadCPUPercent)
				}
				wantRows = append(wantRows, "load cpu")
			}
			var table strings.Builder
			if err := res.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			for _, want := range wantRows {
				if !strings.Contains(table.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, table.String())
				}
			}
			b, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"mode", "messages_per_s", "mb_per_s", "conns_per_s", "latency_us", "errors", "server"} {
				if _, ok := back[key]; !ok {
					t.Errorf("JSON lacks %q: %s", key, b)
				}
			}
		})
	}
}

func TestProcessCPUAndRSS(t *testing.T) {
	// Burn a little CPU so that at least one clock tick is counted.
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	sys, syserr := bench.ProcessSystemCPU(os.Getpid()) // first: it can only grow
	cpu, err := bench.ProcessCPU(os.Getpid())
	if errors.Is(err, bench.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil || cpu <= 0 {
		t.Errorf("ProcessCPU = %v, %v", cpu, err)
	}
	if syserr != nil || sys < 0 || sys > cpu {
		t.Errorf("ProcessSystemCPU = %v, %v; want between 0 and ProcessCPU's %v", sys, syserr, cpu)
	}
	rss, err := bench.ProcessRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("ProcessRSS = %d, %v", rss, err)
	}
	if _, err := bench.ProcessCPU(1 << 30); err == nil {
		t.Error("ProcessCPU of a process that does not exist: no error")
	}
}

// TestIdleNoEchoSaysSo: idle connections that open but whose one-byte
// echo never comes fail the run with that reason, not as connections
// too slow to open.
func TestIdleNoEchoSaysSo(t *testing.T) {
	cfg := bench.Config{Addr: stallServer(t), Mode: bench.ModeIdle, Conns: 3, Duration: 500 * time.Millisecond}
	_, err := runTimed(t, context.Background(), cfg)
	if !errors.Is(err, bench.ErrRunFailed) || !strings.Contains(err.Error(), "3 opened, but their one-byte echo had not come back") {
		t.Fatalf("Run: %v", err)
	}
}

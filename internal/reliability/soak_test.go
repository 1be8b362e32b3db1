//go:build linux

package reliability

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Soak parameters; see docs/reliability.md.
const (
	soakHeld     = 2000             // connections held open throughout
	soakWarmUp   = 5 * time.Second  // a first round of the same load
	soakDuration = 40 * time.Second // the measured round, unless ECHOCTL_SOAK_DURATION says
	soakSettle   = 10 * time.Second // the most the figures may take to come back
	// soakStartSettle is how long the server runs under light traffic
	// after the warm-up before the start figures are taken, and at least
	// as long after the measured round before the end figures are.
	soakStartSettle = 3 * time.Second
	soakSlack       = 0.10 // "back within 10%"
)

// figures are what the soak watches in the server process.
type figures struct {
	rssKiB     float64
	goroutines float64
	fds        float64
	// For the report: the Go heap in use and the heap pages the runtime
	// keeps, unused, for reuse (idle minus released to the OS).
	heapInuse, heapKept float64
}

func (f figures) String() string {
	return fmt.Sprintf("RSS %6.1f MiB  goroutines %5.0f  open fds %5.0f  (Go heap in use %5.1f MiB, kept idle %5.1f MiB)",
		f.rssKiB/1024, f.goroutines, f.fds, f.heapInuse/(1<<20), f.heapKept/(1<<20))
}

// sample reads the figures from /metrics (goroutines) and /proc (RSS and
// descriptors, which the process collector also exports).
func sample(t testing.TB, s *server) figures {
	t.Helper()
	m := s.scrape(t)
	rss, err := procStatus(s.pid(), "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	fds, err := openFDs(s.pid())
	if err != nil {
		t.Fatal(err)
	}
	return figures{rssKiB: float64(rss), goroutines: m["go_goroutines"], fds: float64(fds),
		heapInuse: m["go_memstats_heap_inuse_bytes"],
		heapKept:  m["go_memstats_heap_idle_bytes"] - m["go_memstats_heap_released_bytes"]}
}

func peak(a, b figures) figures {
	return figures{max(a.rssKiB, b.rssKiB), max(a.goroutines, b.goroutines), max(a.fds, b.fds),
		max(a.heapInuse, b.heapInuse), max(a.heapKept, b.heapKept)}
}

// within reports whether every figure of f is at most (1+slack) times
// start's; for the small counts (goroutines, descriptors) 10% of the start
// is rounded up to a whole one.
func (f figures) within(start figures, slack float64) bool {
	return f.rssKiB <= start.rssKiB*(1+slack) &&
		f.goroutines <= start.goroutines+math.Ceil(start.goroutines*slack) &&
		f.fds <= start.fds+math.Ceil(start.fds*slack)
}

// loadStats count what one round of load did.
type loadStats struct {
	exchanges, errors int64
	firstErr          error
	peak              figures
}

// runLoad holds soakHeld connections open while workers open, use and
// close connections as fast as they can, for d; then it checks that the
// held connections are still served and closes everything.
func runLoad(t *testing.T, s *server, d time.Duration) loadStats {
	t.Helper()
	var st loadStats
	held := make([]net.Conn, 0, soakHeld)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range soakHeld {
		c, err := net.DialTimeout("tcp", s.addr, ioTimeout)
		if err != nil {
			t.Fatalf("held connection %d: %v", i, err)
		}
		held = append(held, c)
		if err := tryRoundTrip(c, []byte("hold")); err != nil {
			t.Fatalf("held connection %d: %v", i, err)
		}
	}

	stop := make(chan struct{})
	churnDone := make(chan struct{})
	go func() {
		defer close(churnDone)
		st.exchanges, st.errors, st.firstErr = churn(s.addr, 4*runtime.GOMAXPROCS(0), stop)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for end := time.After(d); stop != nil; {
		select {
		case <-end:
			close(stop)
			stop = nil
		case <-tick.C:
			st.peak = peak(st.peak, sample(t, s))
		}
	}
	<-churnDone
	for i, c := range held {
		if err := tryRoundTrip(c, []byte("still held")); err != nil {
			t.Fatalf("held connection %d after the churn: %v", i, err)
		}
	}
	return st
}

// churn runs workers that each make one exchange after another, each on a
// new connection, as fast as they can, until stop is closed. It counts the
// exchanges and the errors.
func churn(addr string, workers int, stop <-chan struct{}) (exchanges, errors int64, firstErr error) {
	var ok, failed atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	msg := []byte("This is the message. It will be sent in parts.")
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
				err := exchange(ctx, addr, msg)
				cancel()
				if err == nil {
					ok.Add(1)
				} else {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	return ok.Load(), failed.Load(), firstErr
}

// settle lets the server run under light traffic (one client making one
// exchange after another, as a quiet service sees) for at least min, and
// until its figures are within slack of want or max has passed; it
// returns the last sample and how long it took. The light traffic lets the
// Go runtime collect garbage and return memory as a live server would.
func settle(t *testing.T, s *server, want figures, minWait, maxWait time.Duration) (figures, time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		churn(s.addr, 1, stop)
	}()
	defer func() {
		close(stop)
		<-done
	}()
	begin := time.Now()
	for {
		// Not a wait for an event: settling is watched over time, one
		// sample every 250ms, between minWait and maxWait.
		time.Sleep(250 * time.Millisecond)
		f := sample(t, s)
		if d := time.Since(begin); d >= minWait && (f.within(want, soakSlack) || d >= maxWait) {
			return f, d
		}
	}
}

// TestSoak churns connections at full speed with soakHeld more held open,
// then checks that the server's RSS, goroutines and open descriptors come
// back within 10% of where they started. It runs only under `make soak`
// (ECHOCTL_SOAK=1): it takes about a minute.
func TestSoak(t *testing.T) {
	if os.Getenv("ECHOCTL_SOAK") == "" {
		t.Skip("the soak test runs with `make soak` (ECHOCTL_SOAK=1)")
	}
	duration := soakDuration
	if v := os.Getenv("ECHOCTL_SOAK_DURATION"); v != "" {
		var err error
		if duration, err = time.ParseDuration(v); err != nil {
			t.Fatalf("ECHOCTL_SOAK_DURATION: %v", err)
		}
	}
	began := time.Now()
	s := startQuietServer(t)
	cold := sample(t, s)

	// The warm-up runs the same load once: the Go runtime keeps the heap,
	// goroutine stacks and poller descriptors it grew for reuse, so the
	// first round's growth is not a leak. The measured round starts
	// from the warmed-up figures.
	warm := runLoad(t, s, soakWarmUp)
	start, _ := settle(t, s, figures{}, soakStartSettle, soakStartSettle)
	stats := runLoad(t, s, duration)
	end, settled := settle(t, s, start, soakStartSettle, soakSettle)

	rate := float64(stats.exchanges) / duration.Seconds()
	report := fmt.Sprintf(`soak: %v of churn at full speed (%d workers) with %d connections held open, after a %v warm-up
  cold start   %v
  after warm-up %v   (warm-up: %d exchanges)
  peak         %v
  end          %v   (%v after the load stopped)
  churn: %d exchanges (%.0f/s), %d errors; total time %v`,
		duration, 4*runtime.GOMAXPROCS(0), soakHeld, soakWarmUp,
		cold, start, warm.exchanges, stats.peak, end, settled.Round(time.Millisecond),
		stats.exchanges, rate, stats.errors, time.Since(began).Round(time.Second))
	if logs := s.logs(); logs != "" {
		report += "\n  server warnings:\n" + logs
	}
	fmt.Println(report)

	if stats.errors > 0 {
		t.Errorf("%d of %d exchanges failed; the first: %v", stats.errors, stats.exchanges+stats.errors, stats.firstErr)
	}
	if !end.within(start, soakSlack) {
		t.Errorf("figures not back within %.0f%% of the start:\n start %v\n   end %v", soakSlack*100, start, end)
	}
	// Goroutines and descriptors come back to where a cold start had them
	// too; RSS does not (the runtime keeps the heap the warm-up grew).
	if coldCounts := (figures{rssKiB: end.rssKiB, goroutines: cold.goroutines, fds: cold.fds}); !end.within(coldCounts, soakSlack) {
		t.Errorf("goroutines or descriptors not back within %.0f%% of the cold start:\n  cold %v\n   end %v", soakSlack*100, cold, end)
	}
	s.signal(t, os.Interrupt)
	if code := s.wait(t, ioTimeout); code != 0 {
		t.Errorf("exit code %d after SIGINT, want 0", code)
	}
}

package ping

import (
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Summary is what a run found, as ping prints it at the end.
type Summary struct {
	// Addr is the address probed.
	Addr string
	// Sent and Received count the probes, and the ones echoed whole.
	Sent     int
	Received int
	// Loss is the percentage of probes that failed.
	Loss float64
	// Elapsed is the run's duration.
	Elapsed time.Duration
	// RTT sums up the echoes' round trips, Connect the connections made.
	RTT     Stats
	Connect Stats
	// Errors counts the failed probes by Kind.
	Errors map[string]int
	// Duplicates and Late count, over UDP, the answers to earlier probes
	// that came while a later one waited (Probe.Duplicates, Probe.Late).
	// Copies of the last probe's answer are not waited for.
	Duplicates, Late int
	// Cut reports that Config.Deadline ended the run before Count
	// replies came; the run then fails (OK).
	Cut bool

	count int // Config.Count, for the text of Cut

	rtt, connect accumulator
}

// Stats sums up durations as ping does (min/avg/max/mdev), with the
// median and the 99th percentile.
type Stats struct {
	Count int
	Min   time.Duration
	Avg   time.Duration
	Max   time.Duration
	Mdev  time.Duration
	P50   time.Duration
	P99   time.Duration
}

// accumulator gathers durations in constant memory: sums for the mean and
// mdev, an HDR histogram (1 µs to 1 h, 3 significant digits) for the
// percentiles.
type accumulator struct {
	n        int
	sum, sq  float64
	min, max time.Duration
	h        *hdrhistogram.Histogram
}

func (a *accumulator) add(d time.Duration) {
	if a.h == nil {
		a.h = hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	}
	if a.n == 0 || d < a.min {
		a.min = d
	}
	a.max = max(a.max, d)
	a.n++
	x := float64(d)
	a.sum += x
	a.sq += x * x
	_ = a.h.RecordValue(max(int64(d/time.Microsecond), 1))
}

func (a *accumulator) stats() Stats {
	if a.n == 0 {
		return Stats{}
	}
	mean := a.sum / float64(a.n)
	// mdev as ping(8) computes it: sqrt(mean of squares - square of mean).
	mdev := math.Sqrt(max(a.sq/float64(a.n)-mean*mean, 0))
	pct := func(q float64) time.Duration {
		return min(max(time.Duration(a.h.ValueAtQuantile(q))*time.Microsecond, a.min), a.max)
	}
	return Stats{Count: a.n, Min: a.min, Avg: time.Duration(mean), Max: a.max, Mdev: time.Duration(mdev), P50: pct(50), P99: pct(99)}
}

func newSummary(addr string) *Summary { return &Summary{Addr: addr} }

func (s *Summary) add(p Probe) {
	s.Sent++
	s.Duplicates += len(p.Duplicates)
	s.Late += len(p.Late)
	if p.Connect > 0 {
		s.connect.add(p.Connect)
	}
	if p.Err != nil {
		if s.Errors == nil {
			s.Errors = map[string]int{}
		}
		s.Errors[p.Kind]++
		return
	}
	s.Received++
	s.rtt.add(p.RTT)
}

func (s *Summary) done() Summary {
	if s.Sent > 0 {
		s.Loss = 100 * float64(s.Sent-s.Received) / float64(s.Sent)
	}
	s.RTT, s.Connect = s.rtt.stats(), s.connect.stats()
	return *s
}

// OK reports whether the run passed (exit status 0): some probe was
// answered, and every one that ran its course was; a probe that the end
// of Run's context cut short ("interrupted") is not a failure, but a
// deadline that came before Count replies is (Cut). Stricter than ping(8),
// for which any reply passes.
func (s Summary) OK() bool {
	return s.Received > 0 && s.Received == s.Sent-s.Errors["interrupted"] && !s.Cut
}

package bench

import (
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Second is one second of a run's measured window: what Config.EachSecond
// receives as each second ends, and what Result.Seconds lists.
type Second struct {
	// Second counts the seconds of the measured window from 1.
	Second int `json:"second"`
	// Elapsed is the length of this second, in seconds: 1, or less for
	// the last one when the window ended inside it.
	Elapsed float64 `json:"elapsed_s"`
	// Messages counts the echoes verified in this second, as the Result's
	// Messages does; Bytes the bytes echoed and verified; Connects the
	// connections opened.
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	Connects int64 `json:"connects"`
	// MessagesPerSec, MBPerSec and ConnsPerSec are the same over Elapsed.
	MessagesPerSec float64 `json:"messages_per_s"`
	MBPerSec       float64 `json:"mb_per_s"`
	ConnsPerSec    float64 `json:"conns_per_s"`
	// Errors counts the errors of this second by kind.
	Errors ErrorCounts `json:"errors"`
	// Latency summarises the echoes of this second alone: an interval
	// histogram.
	Latency Latency `json:"latency_us"`
}

// latencyRecorder holds one worker's latencies of the current second. The
// worker records without a lock and without waiting; once a second the
// run's sampler swaps the buffer for an empty one and waits for a record
// in flight to finish (a writer-reader phaser, as HdrHistogram's Recorder
// does), then adds what it took to that second's histogram. A buffer of
// values, not a histogram per worker, because a histogram up to an hour
// at three digits takes a quarter of a megabyte and a run may have
// thousands of connections.
type latencyRecorder struct {
	active   atomic.Pointer[latencies]
	inactive *latencies // the sampler's
	phaser   phaser
}

// latencies are recorded latencies, in nanoseconds, and the bytes of the
// echoes they time.
type latencies struct {
	ns       []int64
	bytes    int64
	connects int64 // connections opened
}

func newLatencyRecorder() *latencyRecorder {
	l := &latencyRecorder{inactive: &latencies{}}
	l.active.Store(&latencies{})
	l.phaser.oddEnd.Store(math.MinInt64)
	return l
}

// record adds a latency of ns nanoseconds, of an echo of n bytes: both
// land in the same second. Only one goroutine at a time records for a
// worker.
func (l *latencyRecorder) record(ns, n int64) {
	e := l.phaser.enter()
	b := l.active.Load()
	b.ns = append(b.ns, ns)
	b.bytes += n
	l.phaser.exit(e)
}

// addBytes adds n bytes echoed with no latency of their own (a stream's
// read, part of a chunk that completed times).
func (l *latencyRecorder) addBytes(n int64) {
	e := l.phaser.enter()
	l.active.Load().bytes += n
	l.phaser.exit(e)
}

// addConnect counts a connection opened in the measured window.
func (l *latencyRecorder) addConnect() {
	e := l.phaser.enter()
	l.active.Load().connects++
	l.phaser.exit(e)
}

// swap returns what was recorded since the previous swap; its latencies
// are the caller's until it calls swap again. Only the sampler calls it.
func (l *latencyRecorder) swap() *latencies {
	l.inactive.ns, l.inactive.bytes, l.inactive.connects = l.inactive.ns[:0], 0, 0
	old := l.active.Swap(l.inactive)
	l.phaser.flip()
	l.inactive = old
	return old
}

// phaser is HdrHistogram's WriterReaderPhaser: writers enter and leave a
// critical section with an atomic add each, and the reader, after
// swapping what they write to, flips the phase and waits until every
// writer that entered before the flip has left.
type phaser struct {
	start   atomic.Int64
	evenEnd atomic.Int64
	oddEnd  atomic.Int64 // starts at math.MinInt64
}

func (p *phaser) enter() int64 { return p.start.Add(1) - 1 }

func (p *phaser) exit(e int64) {
	if e < 0 {
		p.oddEnd.Add(1)
	} else {
		p.evenEnd.Add(1)
	}
}

func (p *phaser) flip() {
	nextEven := p.start.Load() < 0
	var initial int64
	if nextEven {
		p.evenEnd.Store(0)
	} else {
		initial = math.MinInt64
		p.oddEnd.Store(initial)
	}
	atFlip := p.start.Swap(initial)
	end := &p.evenEnd
	if nextEven {
		end = &p.oddEnd
	}
	for end.Load() != atFlip {
		runtime.Gosched()
	}
}

// sampler cuts the measured window into seconds. Its goroutine samples at
// each whole second before the end; the run samples the last second
// itself once every worker has returned, so that one goroutine at a time
// uses it.
type sampler struct {
	r       *runner
	started bool // the window began: prev holds its start
	n       int
	prevT   time.Time
	prev    totals
	prevErr ErrorCounts
	hist    *hdrhistogram.Histogram // the current second's, reused
	seconds []Second
}

// runSeconds samples each second of the measured window that ends before
// the run does.
func (s *sampler) runSeconds() {
	r := s.r
	if !r.waitUntil(r.measureStart) {
		return
	}
	s.begin(r.measureStart)
	for next := r.measureStart.Add(time.Second); next.Before(r.end); next = next.Add(time.Second) {
		if !r.waitUntil(next) {
			return
		}
		s.sample(next, r.totals())
	}
}

// begin starts the first second at t.
func (s *sampler) begin(t time.Time) {
	s.started = true
	s.prevT = t
	s.prev = s.r.totals()
	s.prevErr = s.r.errorCounts()
}

// finish samples the last second, up to cut (at most the window's end),
// with the counts tot read then.
func (s *sampler) finish(cut time.Time, tot totals) {
	if !s.started {
		return
	}
	if cut.After(s.r.end) {
		cut = s.r.end
	}
	s.sample(cut, tot)
}

// sample ends the current second at t, with the counts tot read then.
func (s *sampler) sample(t time.Time, tot totals) {
	r := s.r
	if s.hist == nil {
		s.hist = hdrhistogram.New(histLowest, histHighest, histDigits)
	}
	h := s.hist
	h.Reset()
	var bytes, connects int64
	for _, w := range r.workers {
		got := w.lat.swap()
		for _, v := range got.ns {
			h.RecordValue(min(max(v, histLowest), histHighest))
		}
		bytes += got.bytes
		connects += got.connects
	}
	r.hist.Merge(h)
	errs := r.errorCounts()
	s.n++
	sec := Second{
		Second:   s.n,
		Elapsed:  max(t.Sub(s.prevT), 0).Seconds(),
		Messages: h.TotalCount(),
		Bytes:    bytes,
		Connects: connects,
		Errors:   errs.minus(s.prevErr),
		Latency:  summarize(h),
	}
	if sec.Elapsed > 0 {
		sec.MessagesPerSec = float64(sec.Messages) / sec.Elapsed
		sec.MBPerSec = float64(sec.Bytes) / sec.Elapsed / 1e6
		sec.ConnsPerSec = float64(sec.Connects) / sec.Elapsed
	}
	s.seconds = append(s.seconds, sec)
	s.prevT, s.prev, s.prevErr = t, tot, errs
	if r.cfg.EachSecond != nil {
		r.cfg.EachSecond(sec)
	}
}

// errorCounts returns the errors counted so far.
func (r *runner) errorCounts() ErrorCounts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs
}

// minus returns the counts of e that are not in before.
func (e ErrorCounts) minus(before ErrorCounts) ErrorCounts {
	return ErrorCounts{
		Mismatch: e.Mismatch - before.Mismatch,
		Timeout:  e.Timeout - before.Timeout,
		Reset:    e.Reset - before.Reset,
		Refused:  e.Refused - before.Refused,
		Other:    e.Other - before.Other,
	}
}

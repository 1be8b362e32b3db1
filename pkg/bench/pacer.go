package bench

import "time"

// A pacer keeps the schedule of a run with a Rate. The run's ticks are
// tick apart from start, and tick n belongs to connection n mod Conns, so
// connection i's k-th message is due at start + (k×Conns + i)×tick: the
// connections' schedules interleave evenly. Where it can (Linux, a
// timerfd), a ticker wakes the connection whose tick it is, within tens
// of microseconds: the Go runtime's own timers would wake it up to a
// millisecond late, in bursts at each millisecond, which a run at a fixed
// rate would then measure as the server's latency.
type pacer struct {
	start time.Time
	tick  time.Duration // between the run's ticks (1/Rate)
	every time.Duration // between one connection's ticks (Conns/Rate)
	conns int

	// wake has a channel for each connection, of capacity 1, on which the
	// ticker posts (without blocking) at each of its ticks; nil without a
	// ticker. A post is a hint: the connection checks the clock.
	wake []chan struct{}
	stop func() // stops the ticker and waits for it
}

// maxInterval caps the ticks of a schedule: a year, longer than any run,
// so that a tiny Rate cannot overflow a Duration.
const maxInterval = 365 * 24 * time.Hour

// earlyWake is how early a connection may send a message rather than wait
// for a wake-up that would come after its time.
const earlyWake = 50 * time.Microsecond

// newPacer starts the schedule of a run at rate messages per second on
// conns connections. Its ticks fall half a tick after anchor, the start
// of the measured window, and every tick before and after: a window of
// Rate×Duration ticks then holds them all, each message far from both of
// its ends. (Ticks from the very start of the window put its first tick
// before the first connection was open when there was no warmup, and
// --rate 1 --duration 1s measured nothing.)
func newPacer(rate float64, conns int, anchor time.Time) *pacer {
	tick := time.Duration(min(float64(time.Second)/rate, float64(maxInterval)))
	tick = max(tick, 1)
	every := maxInterval
	if tick <= maxInterval/time.Duration(conns) {
		every = tick * time.Duration(conns)
	}
	p := &pacer{tick: tick, every: every, conns: conns}
	now := time.Now()
	// The first tick from now on: in [now, now+tick).
	p.start = anchor.Add(tick / 2)
	if ahead := p.start.Sub(now); ahead > tick {
		p.start = p.start.Add(-ahead / tick * tick)
	} else if ahead < 0 {
		p.start = p.start.Add((-ahead + tick - 1) / tick * tick)
	}
	wake := make([]chan struct{}, conns)
	for i := range wake {
		wake[i] = make(chan struct{}, 1)
	}
	if stop, ok := startTicker(p.start.Sub(now), tick, func(from, n int64) {
		// n ticks from tick number from: past Conns of them, every
		// connection has had its wake-up.
		for j := range min(n, int64(conns)) {
			select {
			case wake[(from+j)%int64(conns)] <- struct{}{}:
			default:
			}
		}
	}); ok {
		p.wake, p.stop = wake, stop
	}
	return p
}

// ticksIn returns how many of the run's ticks fall in the first d of the
// measured window: they fall half a tick into it and every tick after
// (newPacer), and one at its very end is not in it.
func (p *pacer) ticksIn(d time.Duration) int64 {
	if d <= p.tick/2 {
		return 0
	}
	return int64((d - p.tick/2 + p.tick - 1) / p.tick)
}

// close stops the ticker, if there is one.
func (p *pacer) close() {
	if p.stop != nil {
		p.stop()
	}
}

// first is connection i's first due time at or after now, start's or a
// later one.
func (p *pacer) first(i int) time.Time {
	due := p.start.Add(p.phase(i))
	if late := time.Since(due); late > 0 {
		due = due.Add((late + p.every - 1) / p.every * p.every)
	}
	return due
}

// firstFrom is connection i's first due time at or after t, on the
// schedule's ticks before start as after it.
func (p *pacer) firstFrom(i int, t time.Time) time.Time {
	due := p.start.Add(p.phase(i))
	if p.every == maxInterval {
		return due
	}
	d := t.Sub(due)
	if d > 0 {
		return due.Add((d + p.every - 1) / p.every * p.every)
	}
	return due.Add(-(-d / p.every * p.every))
}

// phase is connection i's offset from start: its own tick of every run
// of Conns.
func (p *pacer) phase(i int) time.Duration {
	if p.every == maxInterval {
		return 0 // too slow to stagger, or to send anything in a run
	}
	return p.tick * time.Duration(i%p.conns)
}

// awaitDue waits until due, a time on connection i's schedule, on the
// ticker's wake-ups if the pacer has a ticker, else on the runtime's
// timers; it reports false if the run ends first.
func (r *runner) awaitDue(i int, due time.Time) bool {
	p := r.pacer
	if p.wake == nil {
		return r.waitUntil(due)
	}
	for {
		if time.Until(due) <= earlyWake {
			return true
		}
		select {
		case <-p.wake[i]:
		case <-r.ctx.Done():
			return false
		}
	}
}

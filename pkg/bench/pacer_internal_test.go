package bench

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestPacerFirst(t *testing.T) {
	const conns = 4
	tick := time.Millisecond
	for _, ago := range []time.Duration{0, 3 * time.Millisecond, 250*time.Millisecond + 300*time.Microsecond, -2 * time.Millisecond} {
		p := &pacer{start: time.Now().Add(-ago), tick: tick, every: conns * tick, conns: conns}
		for i := range conns {
			before := time.Now()
			due := p.first(i)
			off := due.Sub(p.start)
			// On connection i's grid, the first point not before now.
			if off%p.every != time.Duration(i)*tick || due.Before(before) || due.Sub(before) > p.every+time.Duration(i)*tick {
				t.Errorf("started %v ago: first(%d) = start+%v, want start+k×%v+%v, at or after now", ago, i, off, p.every, time.Duration(i)*tick)
			}
		}
	}
}

// TestPacerTicksMidWindow: the schedule's ticks fall half a tick after
// its anchor and every tick from there, the first at or after now.
func TestPacerTicksMidWindow(t *testing.T) {
	const tick = 100 * time.Millisecond
	for _, after := range []time.Duration{0, tick / 4, time.Second + tick/3, -3*tick - tick/5} {
		before := time.Now()
		anchor := before.Add(after)
		p := newPacer(float64(time.Second/tick), 2, anchor)
		p.close()
		if off := anchor.Add(tick / 2).Sub(p.start); off%tick != 0 {
			t.Errorf("anchor now%+v: start is %v from anchor+tick/2, want whole ticks", after, off)
		}
		if p.start.Before(before) || p.start.Sub(before) > tick+10*time.Millisecond {
			t.Errorf("anchor now%+v: start now%+v, want within a tick from now", after, p.start.Sub(before))
		}
	}
}

func TestPacerTooSlowToStagger(t *testing.T) {
	p := newPacer(1e-15, 1000, time.Now())
	defer p.close()
	if p.tick != maxInterval || p.every != maxInterval {
		t.Fatalf("tick %v, every %v; want both capped at %v", p.tick, p.every, maxInterval)
	}
	if due := p.first(999); due.Before(p.start) || due.After(p.start.Add(maxInterval)) {
		t.Errorf("first(999) = start+%v, want within one interval", due.Sub(p.start))
	}
}

// TestTickerCountsEveryTick checks that the ticker numbers its ticks with
// no gap or overlap, however many pass between two wake-ups.
func TestTickerCountsEveryTick(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the ticker is Linux's timerfd")
	}
	const wantCalls = 25 // each call after the first goes on from the one before
	var mu sync.Mutex
	var next, calls int64
	enough := make(chan struct{})
	stop, ok := startTicker(0, 200*time.Microsecond, func(from, n int64) {
		mu.Lock()
		defer mu.Unlock()
		if from != next || n < 1 {
			t.Errorf("tick(%d, %d) after %d ticks", from, n, next)
		}
		next = from + n
		calls++
		if calls == wantCalls {
			close(enough)
		}
	})
	if !ok {
		t.Fatal("no timerfd")
	}
	select {
	case <-enough:
	case <-time.After(10 * time.Second):
	}
	stop()
	stop() // a second stop does nothing
	mu.Lock()
	defer mu.Unlock()
	if calls < wantCalls {
		t.Errorf("%d ticks in %d calls in 10s at 200µs, want %d calls", next, calls, wantCalls)
	}
}

// TestRampOffset: connections open spread evenly over the ramp, however
// many over however long (ramp×i overflowed an int64: a million
// connections over a 10-hour warmup opened the last ones at once).
func TestRampOffset(t *testing.T) {
	tests := []struct {
		ramp     time.Duration
		i, conns int
		want     time.Duration
	}{
		{time.Second, 0, 4, 0},
		{time.Second, 1, 4, 250 * time.Millisecond},
		{time.Second, 3, 4, 750 * time.Millisecond},
		{5 * time.Hour, 999_999, 1_000_000, 5*time.Hour - 18*time.Millisecond},
	}
	for _, tt := range tests {
		if got := rampOffset(tt.ramp, tt.i, tt.conns); got != tt.want {
			t.Errorf("rampOffset(%v, %d, %d) = %v, want %v", tt.ramp, tt.i, tt.conns, got, tt.want)
		}
	}
}

// TestPacerTicksIn: the ticks a window of d holds, half a tick in and
// every tick after, one at its very end not in it: a bench udp:// run
// at --rate 2 for 1250ms said it was behind a third datagram it was never
// due to send.
func TestPacerTicksIn(t *testing.T) {
	tests := []struct {
		tick, d time.Duration
		want    int64
	}{
		{500 * time.Millisecond, 1250 * time.Millisecond, 2},
		{500 * time.Millisecond, 1250*time.Millisecond + 1, 3},
		{500 * time.Millisecond, time.Second, 2},
		{time.Millisecond, time.Second, 1000},
		{time.Millisecond, 0, 0},
		{time.Millisecond, 500 * time.Microsecond, 0},
		{time.Millisecond, 500*time.Microsecond + 1, 1},
	}
	for _, tt := range tests {
		p := &pacer{tick: tt.tick}
		if got := p.ticksIn(tt.d); got != tt.want {
			t.Errorf("tick %v, window %v: %d ticks, want %d", tt.tick, tt.d, got, tt.want)
		}
	}
}

// TestPacerFirstFrom: a connection's first tick at or after a time, on
// the schedule's lattice before its start as after: a udp:// run with no
// warmup sends the window's ticks that passed while its socket opened
// (it sent 999 of --rate 1000's 1000 in a second).
func TestPacerFirstFrom(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	tests := []struct {
		conns, i int
		from     time.Duration // after t0
		want     time.Duration // after t0
	}{
		{1, 0, 0, 0},
		{1, 0, -2300 * time.Microsecond, -2 * ms},
		{1, 0, 2300 * time.Microsecond, 3 * ms},
		{2, 1, 0, ms},
		{2, 1, 1500 * time.Microsecond, 3 * ms},
		{2, 1, -3500 * time.Microsecond, -3 * ms},
	}
	for _, tt := range tests {
		p := &pacer{start: t0, tick: ms, every: ms * time.Duration(tt.conns), conns: tt.conns}
		if got := p.firstFrom(tt.i, t0.Add(tt.from)).Sub(t0); got != tt.want {
			t.Errorf("%d conns, connection %d, from %v: %v, want %v", tt.conns, tt.i, tt.from, got, tt.want)
		}
	}
}

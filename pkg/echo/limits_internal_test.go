package echo

import (
	"testing"
	"time"
)

// TestLogLimiter: lines past the first in an interval are held back and
// counted by the next line let through, or reported in a line of their
// own at the end of the interval or when flushed, once each.
func TestLogLimiter(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name      string
		interval  time.Duration
		held      int  // lines held back after the first
		next      bool // then a line let through, after the interval
		wantNext  int  // the count it carries
		wantFlush int  // what flush then reports (0: no report)
	}{
		{name: "none held", interval: time.Hour, wantFlush: 0},
		{name: "flushed at the end", interval: time.Hour, held: 3, wantFlush: 3},
		{name: "counted by the next line", interval: time.Hour, held: 2, next: true, wantNext: 2, wantFlush: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l logLimiter
			var reports []int
			report := func(n int) { reports = append(reports, n) }
			if ok, _ := l.allow(t0, tt.interval, report); !ok {
				t.Fatal("the first line was held back")
			}
			for range tt.held {
				if ok, _ := l.allow(t0, tt.interval, report); ok {
					t.Fatal("a line within the interval was let through")
				}
			}
			if tt.next {
				ok, n := l.allow(t0.Add(tt.interval), tt.interval, report)
				if !ok || n != tt.wantNext {
					t.Fatalf("the line after the interval: let through %v, counting %d; want true, %d", ok, n, tt.wantNext)
				}
			}
			l.flush()
			l.flush() // reports once
			want := []int{}
			if tt.wantFlush > 0 {
				want = append(want, tt.wantFlush)
			}
			if len(reports) != len(want) || (len(want) == 1 && reports[0] != want[0]) {
				t.Errorf("reported %v, want %v", reports, want)
			}
			if l.timer != nil {
				t.Error("a timer is left armed")
			}
		})
	}
}

// TestLogLimiterReportsAtIntervalEnd: held-back lines are reported when
// their interval ends, with no other line to count them.
func TestLogLimiterReportsAtIntervalEnd(t *testing.T) {
	var l logLimiter
	got := make(chan int, 2)
	report := func(n int) { got <- n }
	now := time.Now()
	l.allow(now, 10*time.Millisecond, report)
	l.allow(now, 10*time.Millisecond, report)
	l.allow(now, 10*time.Millisecond, report)
	select {
	case n := <-got:
		if n != 2 {
			t.Errorf("reported %d, want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report after the interval ended")
	}
	l.flush()
	select {
	case n := <-got:
		t.Errorf("reported %d again", n)
	default:
	}
}

// TestLogLimiterSteadyFlood: in a steady flood the next line let through
// carries the count, and no report of its own is left pending: a line an
// interval, not the count's line and then the next.
func TestLogLimiterSteadyFlood(t *testing.T) {
	var l logLimiter
	report := func(n int) { t.Errorf("reported %d on its own", n) }
	now := time.Now()
	const interval = time.Hour // the report's timer must not go off
	if ok, _ := l.allow(now, interval, report); !ok {
		t.Fatal("first line held back")
	}
	for i := range 5 {
		if ok, _ := l.allow(now.Add(time.Duration(i)*time.Minute), interval, report); ok {
			t.Fatalf("line %d let through within the interval", i)
		}
	}
	ok, held := l.allow(now.Add(interval), interval, report)
	if !ok || held != 5 {
		t.Fatalf("the line an interval on: let through %v, counting %d; want true, 5", ok, held)
	}
	if l.timer != nil {
		t.Error("a report is still pending")
	}
}

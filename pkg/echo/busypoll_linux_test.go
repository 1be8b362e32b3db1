package echo_test

import (
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestBusyPollWindow: after a message, an event loop with BusyPoll goes on
// looking for more without sleeping, and once BusyPoll has passed without
// any it sleeps in epoll_wait; without BusyPoll it sleeps at once. The
// test counts the loops' turns (CountLoopTurns) rather than measuring CPU
// time, which other tests and other processes share: a loop that polls
// turns thousands of times in BusyPoll, one that sleeps a few times a
// message.
func TestBusyPollWindow(t *testing.T) {
	const (
		minPolling = 100 // turns after a message when polling for MaxBusyPoll
		maxAsleep  = 10  // turns after a message when not polling
	)
	tests := []struct {
		name     string
		busyPoll time.Duration
		polls    bool
	}{
		{"no busy poll", 0, false},
		{"BusyPoll max", echo.MaxBusyPoll, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &echo.Server{BusyPoll: tt.busyPoll}
			ln := listenLocal(t)
			serve(t, srv, ln)
			c := dial(t, ln.Addr().String())
			roundTrip(t, c, []byte("loops started"))
			turns := echo.CountLoopTurns(srv)
			before := waitLoopsAsleep(t, turns)
			roundTrip(t, c, []byte("poll"))
			n := waitLoopsAsleep(t, turns) - before
			t.Logf("the loops turned %d times after a message", n)
			if tt.polls && n < minPolling {
				t.Errorf("the loops turned %d times after a message with BusyPoll %v; want at least %d: they did not poll", n, tt.busyPoll, minPolling)
			}
			if !tt.polls && n > maxAsleep {
				t.Errorf("the loops turned %d times after a message without BusyPoll; want at most %d: they polled", n, maxAsleep)
			}
		})
	}
}

// waitLoopsAsleep waits until the event loops sleep in epoll_wait, which
// is when their count of turns stops moving, and returns the count. The
// count must stand still for several times the longest BusyPoll, far
// longer than a polling loop, which turns every few microseconds, goes
// unscheduled even on a loaded machine. A loop that never stops polling
// fails the test (waitUntil's deadline).
func waitLoopsAsleep(t *testing.T, turns func() int64) int64 {
	t.Helper()
	const still = 3 * echo.MaxBusyPoll
	last, since := turns(), time.Now()
	waitUntil(t, "the event loops to stop turning (BusyPoll is over)", func() bool {
		if n := turns(); n != last {
			last, since = n, time.Now()
			return false
		}
		return time.Since(since) >= still
	})
	return last
}

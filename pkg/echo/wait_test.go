package echo_test

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// How the tests wait: for an event (a channel, an Observer call, a log
// line) wherever there is one, never for a fixed time. waitUntil is for the
// few conditions that nothing announces (a socket's state in the kernel, a
// counter that must stop moving); it looks often and gives up after a
// deadline, so that a broken server fails the test rather than hang it.

// waitUntil looks at cond every few milliseconds until it holds, and fails
// the test, naming what it waited for, if it does not within ioTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(ioTimeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("waited %v for %s", ioTimeout, what)
		}
	}
}

// watchedLog collects log output, as syncBuffer does, and wakes those
// waiting for a line (wait) at every write.
type watchedLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed at the next write
}

func (w *watchedLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
	return w.buf.Write(p)
}

func (w *watchedLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait returns the log once cond holds of it, waking at each write; it
// fails the test, naming what it waited for, after ioTimeout.
func (w *watchedLog) wait(t *testing.T, what string, cond func(log string) bool) string {
	t.Helper()
	deadline := time.NewTimer(ioTimeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		log := w.buf.String()
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		changed := w.changed
		w.mu.Unlock()
		if cond(log) {
			return log
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; log:\n%s", ioTimeout, what, log)
		}
	}
}

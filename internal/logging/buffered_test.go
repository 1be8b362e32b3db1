package logging

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedRecorder records each Write call, safely from the timer's goroutine.
type lockedRecorder struct {
	mu     sync.Mutex
	writes []string
	err    error
	wrote  chan struct{} // gets a value after each write, if not full
}

func newLockedRecorder() *lockedRecorder { return &lockedRecorder{wrote: make(chan struct{}, 1)} }

func (w *lockedRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.writes = append(w.writes, string(p))
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *lockedRecorder) got() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func TestBufferedHoldsThenWritesInOnePiece(t *testing.T) {
	out := newLockedRecorder()
	b := NewBuffered(out, time.Hour) // only Flush and Close write
	t.Cleanup(func() { _ = b.Close() })
	for _, line := range []string{"a: accepted\n", "a: closing\n"} {
		if n, err := b.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", line, n, err)
		}
	}
	if got := out.got(); len(got) != 0 {
		t.Fatalf("written before any flush: %q", got)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.got(); len(got) != 1 || got[0] != "a: accepted\na: closing\n" {
		t.Fatalf("after Flush: %q, want the two lines in one write", got)
	}
	if err := b.Flush(); err != nil || len(out.got()) != 1 {
		t.Fatalf("an empty Flush wrote: %q, %v", out.got(), err)
	}
}

func TestBufferedFlushesOnItsOwn(t *testing.T) {
	out := newLockedRecorder()
	b := NewBuffered(out, time.Millisecond)
	t.Cleanup(func() { _ = b.Close() })
	for round := range 3 { // the timer is armed again after each flush
		line := fmt.Sprintf("line %d\n", round)
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-out.wrote:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: nothing written without a Flush", round)
		}
		if got := out.got(); got[len(got)-1] != line {
			t.Fatalf("round %d: wrote %q", round, got)
		}
	}
}

func TestBufferedFullWritesAtOnce(t *testing.T) {
	out := newLockedRecorder()
	b := NewBuffered(out, time.Hour)
	t.Cleanup(func() { _ = b.Close() })
	line := strings.Repeat("x", 1023) + "\n"
	for range bufferedMax / len(line) {
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-out.wrote:
	case <-time.After(10 * time.Second):
		t.Fatalf("holding %d bytes wrote nothing", bufferedMax)
	}
	if got := out.got(); len(got) != 1 || len(got[0]) != bufferedMax {
		t.Fatalf("holding %d bytes wrote %d times", bufferedMax, len(got))
	}
}

func TestBufferedCloseLosesNothingAndKeepsOrder(t *testing.T) {
	out := newLockedRecorder()
	b := NewBuffered(out, 50*time.Microsecond) // flushes race the writers
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(b, "w%d %d\n", w, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(out.got(), "")
	next := make([]int, writers)
	for _, l := range strings.Split(strings.TrimSuffix(all, "\n"), "\n") {
		var w, i int
		if _, err := fmt.Sscanf(l, "w%d %d", &w, &i); err != nil {
			t.Fatalf("line %q torn: %v", l, err)
		}
		if i != next[w] {
			t.Fatalf("writer %d: line %d after %d: out of order or lost", w, i, next[w]-1)
		}
		next[w]++
	}
	for w, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines of %d written", w, n, lines)
		}
	}
	// After Close a write goes out at once, not a FlushEvery later.
	for len(out.wrote) > 0 {
		<-out.wrote
	}
	if _, err := b.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("a write after Close is held")
	}
	if got := out.got(); got[len(got)-1] != "late\n" {
		t.Fatalf("after Close, wrote %q", got[len(got)-1])
	}
}

// blockedWriter takes nothing until it is unblocked: a pipe nobody reads.
type blockedWriter struct {
	lockedRecorder
	unblock chan struct{}
	entered chan struct{} // gets a value when a Write starts to wait
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.unblock
	return w.lockedRecorder.Write(p)
}

// TestBufferedNeverBlocksTheWriters: while the destination takes nothing,
// writes return at once; past 1 MiB held, lines are dropped and counted,
// and once the destination takes bytes again what was held goes out in
// order, then the notice of what was dropped. Close waits CloseWait at most.
func TestBufferedNeverBlocksTheWriters(t *testing.T) {
	out := &blockedWriter{lockedRecorder: *newLockedRecorder(), unblock: make(chan struct{}), entered: make(chan struct{}, 1)}
	b := NewBuffered(out, time.Millisecond)
	var dropped []int
	// A notice longer than a line: it must not be dropped for want of
	// room, as it once was, counting itself ("1 log lines dropped").
	pad := strings.Repeat("n", 300)
	b.OnDrop(func(n int) {
		dropped = append(dropped, n)
		fmt.Fprintf(b, "dropped %d %s\n", n, pad)
	})
	line := strings.Repeat("x", 99) + "\n"
	if _, err := b.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	<-out.entered // the flush waits on the destination
	const lines = 3 * heldMax / 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range lines {
			if _, err := b.Write([]byte(line)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes waited for a destination that takes nothing")
	}
	start := time.Now()
	if err := b.Close(); !errors.Is(err, ErrLogBlocked) || time.Since(start) < CloseWait {
		t.Fatalf("Close = %v after %v, want %v after %v", err, time.Since(start), ErrLogBlocked, CloseWait)
	}
	close(out.unblock)
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(out.got(), "")
	held := strings.Count(all, line)
	if held < heldMax/100 || held >= lines {
		t.Errorf("%d of %d lines written, want about 1 MiB of them", held, lines+1)
	}
	if len(dropped) != 1 || dropped[0] != lines+1-held || !strings.HasSuffix(all, fmt.Sprintf("dropped %d %s\n", dropped[0], pad)) {
		t.Errorf("dropped %v, written %d of %d, log ends %q; want one notice of the rest, last", dropped, held, lines+1, all[max(0, len(all)-40):])
	}
}

func TestBufferedKeepsTheWriteError(t *testing.T) {
	out := newLockedRecorder()
	b := NewBuffered(out, time.Hour)
	t.Cleanup(func() { _ = b.Close() })
	broken := errors.New("stderr closed")
	out.err = broken
	if _, err := b.Write([]byte("held\n")); err != nil {
		t.Fatalf("Write before the flush: %v", err)
	}
	if err := b.Flush(); !errors.Is(err, broken) {
		t.Fatalf("Flush = %v, want %v", err, broken)
	}
	// The log has ended: writes are dropped without an error, which a
	// logger would report on standard error, once a line.
	if n, err := b.Write([]byte("next\n")); n != 5 || err != nil {
		t.Fatalf("Write after a failed flush = %d, %v, want 5, nil", n, err)
	}
	if err := b.Flush(); !errors.Is(err, broken) {
		t.Fatalf("the next Flush = %v, want %v", err, broken)
	}
}

// TestSerialized: a Buffered is logged to as it is (its writes are
// serialised already); any other writer gets zerolog's lock.
func TestSerialized(t *testing.T) {
	b := NewBuffered(io.Discard, FlushEvery)
	defer b.Close()
	if got := Serialized(b); got != io.Writer(b) {
		t.Errorf("Serialized(Buffered) = %T, want the Buffered itself", got)
	}
	var plain strings.Builder
	if got := Serialized(&plain); got == io.Writer(&plain) {
		t.Errorf("Serialized(%T) returned it unlocked", &plain)
	}
}

// slowWriter takes everything, a little late each time: a reader that
// keeps up, slowly.
type slowWriter struct{ lockedRecorder }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(20 * time.Millisecond) // the behaviour under test: a slow destination
	return w.lockedRecorder.Write(p)
}

// TestBufferedSlowLosesNothing: a destination slower than the writers,
// but that takes bytes, makes them wait once 1 MiB is held: no line is
// dropped (the -v transcript of a bulk echo is more than a MiB a second).
func TestBufferedSlowLosesNothing(t *testing.T) {
	out := &slowWriter{*newLockedRecorder()}
	b := NewBuffered(out, time.Millisecond)
	b.OnDrop(func(n int) { t.Errorf("%d lines dropped", n) })
	line := strings.Repeat("y", 99) + "\n"
	const lines = 4 * heldMax / 100
	for range lines {
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(strings.Join(out.got(), ""), line); got != lines {
		t.Errorf("%d of %d lines written", got, lines)
	}
}

package echo

import (
	"slices"
	"testing"
)

// TestLoopTimersOrder: the timer heap gives the earliest due first, and
// nothing before it is due.
func TestLoopTimersOrder(t *testing.T) {
	var h loopTimers
	for _, due := range []int64{30, 10, 20} {
		h.add(loopTimer{due: due})
	}
	if w := h.wait(5); w != 5 {
		t.Errorf("wait at 5 = %v, want 5ns", w)
	}
	if _, ok := h.popDue(9); ok {
		t.Fatal("popDue(9) gave a timer due at 10")
	}
	var got []int64
	for {
		tm, ok := h.popDue(25)
		if !ok {
			break
		}
		got = append(got, tm.due)
	}
	if len(got) != 2 || got[0] != 10 || got[1] != 20 || h.wait(25) != 5 {
		t.Errorf("due by 25: %v, then wait %v; want [10 20], then 5ns", got, h.wait(25))
	}
}

// TestLoopTimersRemove: a connection's timers leave the heap when asked,
// whatever their place, one of each kind at most, and the rest keep their
// order.
func TestLoopTimersRemove(t *testing.T) {
	var h loopTimers
	runs := make([]*stageRun, 6)
	for i := range runs {
		runs[i] = &stageRun{}
		h.add(loopTimer{due: int64(60 - 10*i), run: runs[i], kind: timerOpen})
		h.add(loopTimer{due: int64(65 - 10*i), run: runs[i], kind: timerPiece})
	}
	h.add(loopTimer{due: 1, run: runs[0], kind: timerPiece}) // replaces its piece timer due at 65
	if len(h) != 12 {
		t.Fatalf("%d timers, want 12: a second timer of a kind replaces the first", len(h))
	}
	h.removeAll(runs[2])
	h.remove(runs[4], timerOpen)
	h.remove(runs[4], timerOpen) // not there any more: nothing
	var got []int64
	for {
		tm, ok := h.popDue(100)
		if !ok {
			break
		}
		if tm.run.timerAt[tm.kind] != 0 {
			t.Errorf("a popped timer is still placed in its run")
		}
		got = append(got, tm.due)
	}
	want := []int64{1, 10, 15, 25, 30, 35, 50, 55, 60}
	if !slices.Equal(got, want) {
		t.Errorf("timers fired at %v, want %v", got, want)
	}
}

package echo

import (
	"math/rand/v2"
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
	if h[0].due != 10 {
		t.Errorf("earliest due at %d, want 10", h[0].due)
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
	if len(got) != 2 || got[0] != 10 || got[1] != 20 || h[0].due != 30 {
		t.Errorf("due by 25: %v, then the earliest at %d; want [10 20], then 30", got, h[0].due)
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

// TestLoopTimersRandom: whatever the order of adds, replacements and
// removals, the heap keeps its order, every run knows where its timers
// are, and the timers come out earliest first.
func TestLoopTimersRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h loopTimers
	runs := make([]*stageRun, 20)
	for i := range runs {
		runs[i] = &stageRun{}
	}
	check := func(op string) {
		t.Helper()
		for i, tm := range h {
			if i > 0 && h[(i-1)/2].due > tm.due {
				t.Fatalf("after %s: timer %d due %d before its parent's %d", op, i, tm.due, h[(i-1)/2].due)
			}
			if tm.run.timerAt[tm.kind] != int32(i)+1 {
				t.Fatalf("after %s: the timer at %d is placed at %d", op, i, tm.run.timerAt[tm.kind]-1)
			}
		}
		n := 0
		for _, r := range runs {
			for _, at := range r.timerAt {
				if at != 0 {
					n++
				}
			}
		}
		if n != len(h) {
			t.Fatalf("after %s: %d timers placed, %d in the heap", op, n, len(h))
		}
	}
	for range 5000 {
		r, kind := runs[rng.IntN(len(runs))], timerKind(rng.IntN(int(timerKinds)))
		switch rng.IntN(4) {
		case 0, 1:
			h.add(loopTimer{due: rng.Int64N(1000), run: r, kind: kind})
			check("add")
		case 2:
			h.remove(r, kind)
			check("remove")
		case 3:
			due := rng.Int64N(1000)
			last := int64(-1)
			for {
				tm, ok := h.popDue(due)
				if !ok {
					break
				}
				if tm.due < last || tm.due > due {
					t.Fatalf("popped %d after %d, due by %d", tm.due, last, due)
				}
				last = tm.due
			}
			check("popDue")
		}
	}
}

package echo

import "testing"

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

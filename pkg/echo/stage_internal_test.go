package echo

import (
	"slices"
	"testing"
	"time"
)

// TestStageRunChains: open stages read in order, each from where the one
// before stopped, and leave the rest to the echo; write stages run in a
// row, each cutting the piece the one before chose, their waits summed.
func TestStageRunChains(t *testing.T) {
	st := &stages{
		open: []openStage{
			lineHeader{limit: 16, within: time.Minute},
			greeter("one\n"),
			lineHeader{limit: 16, within: time.Second},
			greeter("two\n"),
		},
		write: []writeStage{slicer{n: 5, gap: time.Millisecond}, slicer{n: 2, gap: 2 * time.Millisecond}},
	}
	r := newStageRun()
	now := time.Now()
	if !st.start(r, &conn{}, now) {
		t.Fatal("start: no stage applies")
	}
	if !r.openBy.Equal(now.Add(time.Second)) {
		t.Errorf("openBy %v after now, want the shorter bound, 1s", r.openBy.Sub(now))
	}
	for _, tt := range []struct {
		in, rest string
		reading  bool
	}{
		{"fir", "", true},
		{"st\nsec", "", true},
		{"ond\nthe echo", "the echo", false},
	} {
		rest, err := r.take([]byte(tt.in))
		if err != nil || string(rest) != tt.rest || (r.reading() > 0) != tt.reading {
			t.Fatalf("take(%q) = %q, %v, reading %d; want %q, still reading %v", tt.in, rest, err, r.reading(), tt.rest, tt.reading)
		}
	}
	if g := string(r.greeting()); g != "one\ntwo\n" {
		t.Errorf("greeting %q, want the open stages' in order", g)
	}
	r.startChunk(make([]byte, 7))
	var pieces []int
	var waits []time.Duration
	for rest := 7; rest > 0; {
		n, wait := r.next(rest)
		pieces, waits = append(pieces, n), append(waits, wait)
		rest -= n
	}
	if want := []int{2, 2, 2, 1}; !slices.Equal(pieces, want) {
		t.Errorf("pieces %v, want %v", pieces, want)
	}
	if want := []time.Duration{0, 3 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

// TestStageRunUnpaced: from Shutdown's deadline on (stop, or a loop's
// unpaced), the rest of a chunk goes whole, with no wait: sliced a byte at
// a time, a full receive queue took a system call a byte, and seconds
// past the deadline.
func TestStageRunUnpaced(t *testing.T) {
	for _, stop := range []func(*stageRun){(*stageRun).stop, func(r *stageRun) { r.unpaced.Store(true) }} {
		r := newStageRun()
		(&stages{write: []writeStage{slicer{n: 1, gap: time.Hour}}}).start(r, &conn{}, time.Now())
		r.startChunk(make([]byte, 10))
		if n, wait := r.next(10); n != 1 || wait != 0 {
			t.Fatalf("first piece %d after %v, want 1 at once", n, wait)
		}
		if n, wait := r.next(9); n != 1 || wait != time.Hour {
			t.Fatalf("second piece %d after %v, want 1 after 1h", n, wait)
		}
		stop(r)
		if n, wait := r.next(8); n != 8 || wait != 0 {
			t.Errorf("stopped: piece %d after %v, want the rest, 8, at once", n, wait)
		}
	}
	r := &stageRun{}
	r.unpaced.Store(true)
	r.reset()
	if r.unpaced.Load() {
		t.Error("reset kept unpaced for the next connection")
	}
}

// TestStageHeaderBound: a header past its bound fails take.
func TestStageHeaderBound(t *testing.T) {
	r := newStageRun()
	(&stages{open: []openStage{lineHeader{limit: 4}}}).start(r, &conn{}, time.Now())
	if _, err := r.take([]byte("toolong\n")); err == nil {
		t.Fatal("take of a header past its bound: no error")
	}
}

// TestStageRunReset: a loop's run, reset for the next connection, keeps
// nothing of the last one but the room of its slices, and its enders and
// rewriters are nil again, as start leaves them when none is.
func TestStageRunReset(t *testing.T) {
	r := &stageRun{openers: []opener{&proxyReader{}}, pacers: []pacer{nil, nil}, enders: []ender{nil},
		rewriters: []rewriter{nil}, early: []byte("x"), due: 5, piece: 3, greets: true, timerAt: [timerKinds]int32{1, 2}}
	opened := r.openers[:1]
	r.reset()
	if len(r.openers) != 0 || cap(r.openers) != 1 || cap(r.pacers) != 2 || opened[0] != nil {
		t.Errorf("openers %v (room %d, old %v), pacers room %d; want empty, room kept, cleared", r.openers, cap(r.openers), opened[0], cap(r.pacers))
	}
	if r.enders != nil || r.rewriters != nil || r.early != nil || r.due != 0 || r.piece != 0 || r.greets || r.timerAt != [timerKinds]int32{} {
		t.Errorf("after reset: %+v", r)
	}
}

package echo

import (
	"os"
	"time"

	"github.com/echoctl/echoctl/pkg/echo/internal/netpoll"
	"golang.org/x/sys/unix"
)

// An event loop's side of the stages (stage.go): it runs a connection's
// open stages and write stages without blocking, holding a chunk in the
// connection's pending write while a stage makes it wait, with its timer
// heap (loopTimers) setting when its alarm wakes it (netpoll.Poller). Only
// connections to which a stage applies come here: loopConn.run is nil
// otherwise.

// maxSpareRuns is the most stageRuns a loop keeps for its next
// connections (loop.spareRuns): as many as a connection rate keeps open
// at once, without holding on to those of a crowd that has gone.
const maxSpareRuns = 64

// opened starts the stages of lc, just accepted and added to the loop:
// it arms the time bound of a header read, or writes their greeting.
func (l *loop) opened(lc *loopConn) {
	var run *stageRun
	if n := len(l.spareRuns); n > 0 {
		run, l.spareRuns = l.spareRuns[n-1], l.spareRuns[:n-1]
	} else {
		run = &stageRun{}
	}
	if !lc.lconf.stages.start(run, &lc.conn, l.epoch.Add(time.Duration(l.now()))) {
		// None applies (a fault stage with no fault in force, or one
		// not drawn for this connection): start left run empty, for the
		// next connection.
		l.spareRuns = append(l.spareRuns, run)
		return
	}
	lc.run = run
	if run.slices {
		sendOneByOneFD(int(lc.fd))
	}
	if run.enders != nil {
		if l.endNow(lc, run, false) {
			return // refused
		}
		if at := run.endAt(); !at.IsZero() {
			l.timers.add(loopTimer{due: int64(at.Sub(l.epoch)), lc: lc, run: run, kind: timerEnd})
		}
	}
	if run.reading() == 0 {
		l.greet(lc, run)
		return
	}
	if !run.openBy.IsZero() {
		l.timers.add(loopTimer{due: int64(run.openBy.Sub(l.epoch)), lc: lc, run: run, kind: timerOpen})
	}
}

// greet writes the open stages' greeting, if they have one, before any
// echo; reports whether the echo may start: the greeting is written (or
// there is none) and lc is still open. A failed write closes lc, and run
// is then the next connection's (close).
func (l *loop) greet(lc *loopConn, run *stageRun) bool {
	g := run.greeting()
	if len(g) == 0 {
		return true
	}
	run.greets = true
	lc.written = 0
	l.hold(lc, g)
	run.piece = len(g) // not paced: a greeting is not an echo
	l.writeStaged(lc, run)
	return lc.pending == nil && lc.run == run
}

// held returns lc's stages if a wait holds its chunk, else nil.
func (lc *loopConn) held() *stageRun {
	if run := lc.run; run != nil && run.due != 0 {
		return run
	}
	return nil
}

// hold copies p, a chunk to write, into lc's pending write, so that it
// outlives the loop's read buffer; reads wait until it is written.
func (l *loop) hold(lc *loopConn, p []byte) {
	pw := pendingWrites.Get().(*pendingWrite)
	pw.buf = append(pw.buf[:0], p...)
	pw.rest = pw.buf
	lc.pending = pw
}

// echoStaged is echo for a connection with stages: the open stages take
// what they read first; the rest is echoed as the write stages say.
func (l *loop) echoStaged(lc *loopConn, run *stageRun, p []byte) {
	if run.reading() > 0 {
		rest, err := run.take(p)
		if lc.stopped {
			lc.final -= int32(len(p) - len(rest))
		}
		if err != nil {
			oerr := &opError{"open", err}
			l.close(lc, lc.closeReason(oerr), oerr)
			return
		}
		if l.sweepEvery > 0 {
			lc.movedAt = l.now()
		}
		if run.reading() > 0 {
			if lc.stopped && lc.final == 0 {
				// Shutdown's deadline passed: what the peer had sent
				// then is read, and it was all header. Nothing is owed.
				l.shutWrite(lc)
			}
			return // more to come
		}
		l.timers.remove(run, timerOpen)
		if !l.greet(lc, run) {
			if len(rest) > 0 && lc.run == run { // echoed once the greeting is written
				run.early = append([]byte(nil), rest...)
			}
			return
		}
		if p = rest; len(p) == 0 {
			if lc.stopped && lc.final == 0 {
				l.shutWrite(lc)
			}
			return
		}
	}
	l.echoChunk(lc, run, p)
}

// echoChunk writes back p, just read, as the write stages say.
func (l *loop) echoChunk(lc *loopConn, run *stageRun, p []byte) {
	l.got(lc, p)
	if len(run.pacers) == 0 {
		l.writeBack(lc, p)
		return
	}
	l.hold(lc, p)
	run.startChunk(lc.pending.buf)
	l.writeStaged(lc, run)
}

// writeStaged writes what lc's stages let go now of its pending chunk:
// piece by piece, each after its wait, for which it holds the chunk and
// arms a timer (from Shutdown's deadline on, without waits). What the
// socket does not take waits for writability, as any write back.
func (l *loop) writeStaged(lc *loopConn, run *stageRun) {
	for pieces := 0; run.due == 0; pieces++ {
		rest := lc.pending.rest
		if run.piece == 0 && pieces == piecesPerTurn {
			// Slices with no wait between them: let the loop's other
			// connections, and its deadlines, have a turn (a 64 KiB
			// echo sliced a byte at a time is 65,536 writes). The
			// socket is writable, so the next wait reports it at once.
			l.watch(lc, unix.EPOLLOUT)
			return
		}
		if run.piece == 0 {
			if run.enders != nil && !run.greets && l.endNow(lc, run, true) {
				return
			}
			n, wait := run.next(len(rest))
			run.piece = n
			if wait > 0 && !lc.stopped {
				run.due = l.now() + int64(wait)
				l.timers.add(loopTimer{due: run.due, lc: lc, run: run, kind: timerPiece})
				// Neither read nor write until it is due; edge-triggered,
				// so that a hang-up is reported once, not in a spin.
				l.watch(lc, unix.EPOLLET)
				return
			}
		}
		m, err := netpoll.Retry(func() (int, error) { return netpoll.Write(int(lc.fd), rest[:run.piece]) })
		if err != nil && err != unix.EAGAIN {
			if !run.greets {
				l.cut(lc, nil, int(lc.written)+max(m, 0))
			}
			l.fail(lc, "write", err)
			return
		}
		m = max(m, 0)
		lc.written += int32(m)
		run.piece -= m
		lc.pending.rest = rest[m:]
		if m > 0 && l.sweepEvery > 0 {
			lc.movedAt = l.now()
		}
		if len(lc.pending.rest) == 0 {
			echo := !run.greets
			run.greets, run.piece = false, 0
			l.chunkDone(lc, lc.pending.buf[:lc.written], echo)
			if early := run.early; early != nil && !echo && lc.pending == nil {
				run.early = nil
				l.echoChunk(lc, run, early)
			} else if run.enders != nil && lc.pending == nil && lc.run == run {
				l.endNow(lc, run, false) // before reading on
			}
			return
		}
		if run.piece > 0 {
			l.watch(lc, unix.EPOLLOUT) // the socket is full
			return
		}
	}
}

// piecesPerTurn is how many pieces of a chunk writeStaged writes in one
// go before it lets the loop's other connections have a turn.
const piecesPerTurn = 64

// fireTimers acts on the timers due at now: a held piece is written; an
// open stage still reading past its time bound closes its connection.
func (l *loop) fireTimers(now int64) {
	for {
		t, ok := l.timers.popDue(now)
		if !ok {
			return
		}
		if t.lc.run != t.run {
			continue // closed since
		}
		switch t.kind {
		case timerLinger: // a lingering close (endClose) that the peer did not end
			l.close(t.lc, CloseFault, nil)
		case timerEnd:
			if t.run.ended == endNone {
				l.endNow(t.lc, t.run, t.lc.pending != nil)
			}
		case timerOpen:
			if t.run.reading() > 0 {
				cerr := t.run.cutShort(os.ErrDeadlineExceeded)
				if cerr == nil {
					cerr = os.ErrDeadlineExceeded
				}
				err := &opError{"open", cerr}
				l.close(t.lc, t.lc.closeReason(err), err)
			}
		case timerPiece:
			if t.run.due != t.due {
				continue // written since
			}
			t.run.due = 0
			if l.sweepEvery > 0 {
				t.lc.movedAt = now // held time is not the peer's stall
			}
			l.writeStaged(t.lc, t.run)
		}
	}
}

// loopTimers is an event loop's timer heap, earliest due first: at most
// one timer of each kind for a connection's stages, whose place in the
// heap its stageRun keeps (timerAt), so that a connection's timers leave
// the heap when it closes and the open stages' time bound when they are
// done: a PROXY listener's 5 s bound would otherwise keep every
// connection of the last 5 s in the heap, and in memory. A held piece
// written before its timer is due leaves its timer to be dropped then.
type loopTimers []loopTimer

type loopTimer struct {
	due  int64 // loop clock
	lc   *loopConn
	run  *stageRun
	kind timerKind
}

// swap exchanges the timers at i and j, and records their places.
func (h loopTimers) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h.placed(i)
	h.placed(j)
}

// placed records where the timer at i now is in its stageRun.
func (h loopTimers) placed(i int) {
	if t := h[i]; t.run != nil {
		t.run.timerAt[t.kind] = int32(i) + 1
	}
}

// up moves the timer at i towards the root while it is due before its
// parent. The heap is written out rather than container/heap's, whose
// Push and Pop box each timer in an interface: two allocations a timer.
func (h loopTimers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].due <= h[i].due {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down moves the timer at i towards the leaves while a child is due
// before it, and reports whether it moved.
func (h loopTimers) down(i int) bool {
	start := i
	for {
		c := 2*i + 1
		if c >= len(h) {
			break
		}
		if r := c + 1; r < len(h) && h[r].due < h[c].due {
			c = r
		}
		if h[c].due >= h[i].due {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}

// fix moves the timer at i, whose due time changed, to its place.
func (h loopTimers) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// add puts t in the heap, in place of its connection's timer of the same
// kind if it has one.
func (h *loopTimers) add(t loopTimer) {
	if t.run != nil {
		if at := t.run.timerAt[t.kind]; at != 0 {
			(*h)[at-1] = t
			h.fix(int(at - 1))
			return
		}
	}
	*h = append(*h, t)
	h.placed(len(*h) - 1)
	h.up(len(*h) - 1)
}

// removeAt takes the timer at i out of the heap and returns it.
func (h *loopTimers) removeAt(i int) loopTimer {
	last := len(*h) - 1
	t := (*h)[i]
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = loopTimer{}
	*h = (*h)[:last]
	if t.run != nil {
		t.run.timerAt[t.kind] = 0
	}
	if i != last {
		h.fix(i)
	}
	return t
}

// remove takes run's timer of kind out of the heap, if it has one.
func (h *loopTimers) remove(run *stageRun, kind timerKind) {
	if at := run.timerAt[kind]; at != 0 {
		h.removeAt(int(at - 1))
	}
}

// removeAll takes all of run's timers out of the heap.
func (h *loopTimers) removeAll(run *stageRun) {
	for k := range timerKinds {
		h.remove(run, k)
	}
}

// popDue removes and returns the earliest timer if it is due at now.
func (h *loopTimers) popDue(now int64) (loopTimer, bool) {
	if len(*h) == 0 || (*h)[0].due > now {
		return loopTimer{}, false
	}
	return h.removeAt(0), true
}

// endNow acts on an ending of lc's stages, if one is due (stage.go,
// stageRun.ending; mid: between two pieces of a chunk), as the goroutine
// engine does (goConn.end), without blocking: a close sends FIN and
// discards what the peer still sends (shutWrite, discard) for up to
// drainLinger; a reset closes with SO_LINGER 0; a stall drops what is
// held and watches nothing more (the idle sweep still applies). It
// reports whether lc ended.
func (l *loop) endNow(lc *loopConn, run *stageRun, mid bool) bool {
	end := run.ending(mid)
	if end == endNone {
		return false
	}
	if lc.pending != nil && !run.greets {
		l.cut(lc, nil, int(lc.written)) // as on goroutines
	}
	if lc.stopped && end != endReset {
		// Past Shutdown's deadline (stop) a close or a stall is its
		// lingering close: FIN, and what the peer still sends is
		// dropped, so that the close is not a reset for unread bytes.
		lc.dropPending()
		run.due = 0
		if !lc.draining {
			l.shutWrite(lc)
		}
		return true
	}
	switch end {
	case endClose:
		lc.dropPending()
		run.due = 0
		l.timers.add(loopTimer{due: l.now() + int64(drainLinger), lc: lc, run: run, kind: timerLinger})
		l.shutWrite(lc)
	case endReset:
		unix.SetsockoptLinger(int(lc.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		l.close(lc, CloseFault, &opError{"fault", errFault})
	case endStall:
		lc.dropPending()
		run.due = 0
		// Edge-triggered with no event asked: a hang-up is reported
		// once, and ignored (stalled).
		l.watch(lc, unix.EPOLLET)
	}
	return true
}

// stalled reports whether an ending of lc's stages stalls it: it neither
// reads nor writes.
func (lc *loopConn) stalled() bool { return lc.run != nil && lc.run.ended == endStall }

// drainedReason is why lc, whose write side is shut, closes once its
// peer ends: a fault's lingering close, or Shutdown's.
func (l *loop) drainedReason(lc *loopConn) CloseReason {
	if !lc.stopped && lc.run != nil && lc.run.ended == endClose {
		return CloseFault
	}
	return CloseShutdown
}

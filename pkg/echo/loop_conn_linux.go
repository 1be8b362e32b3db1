package echo

import (
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/echoctl/echoctl/pkg/echo/internal/netpoll"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Connections served by an event loop (loop_linux.go): what the loop keeps
// for each, and how it echoes, writes back what a full socket did not
// take, times out, stops and closes them.

// loopConn is a connection served by an event loop: the shared policy
// (conn) and what the loop keeps for it, 48 bytes more, kept small for
// connections that sit idle (times are on the loop's clock, and what is
// left to write is held apart). Only its loop touches the loop's part.
type loopConn struct {
	conn

	// pending is what the socket did not take of the last read; reads
	// wait until it is written. nil when all is written.
	pending *pendingWrite
	readAt  int64 // when the current chunk was read, for the observer (loop clock)
	// movedAt is when a byte last moved either way, for IdleTimeout and
	// WriteTimeout (loop clock; kept only when they are set).
	movedAt int64
	stopBy  int64 // when a stopped connection is closed in any case (loop clock)

	fd       int32
	written  int32  // bytes of the current chunk written so far
	final    int32  // bytes the peer sent before the deadline, still to echo
	stopped  bool   // Shutdown's deadline passed: drain, then close
	draining bool   // write side shut: discard what the peer still sends
	loop     uint16 // its loop's index in Server.loops

	// run is its stages at work (stage.go, loop_stage_linux.go); nil
	// when none applies, as without stages.
	run *stageRun
}

// stop asks the connection's loop to stop it, as Shutdown does when its
// context ends (loop.stop).
func (lc *loopConn) stop() { lc.srv.loops.get(lc.loop).post(lc, false) }

// abort asks the connection's loop to close it at once, as Close does.
func (lc *loopConn) abort() { lc.srv.loops.get(lc.loop).post(lc, true) }

// pendingWrite is a pooled buffer holding a chunk that a full socket did
// not take whole.
type pendingWrite struct {
	buf  []byte // the whole chunk (fastBufferSize, as the loop's reads, or BufferSize)
	rest []byte // in buf: what is not yet written
	// unacked is how much of the socket's send queue the peer had not
	// taken when the sweep last looked (drained), plus one; 0: not looked.
	unacked int
}

var pendingWrites = sync.Pool{New: func() any { return &pendingWrite{buf: make([]byte, fastBufferSize)} }}

// handle acts on events, which epoll reported for lc.
func (l *loop) handle(lc *loopConn, events uint32) {
	switch {
	case lc.pending != nil:
		l.flush(lc)
	case lc.draining:
		l.discard(lc)
	case lc.stalled():
		// A fault stalls it: nothing is read or written.
	default:
		l.echo(lc, events&unix.EPOLLRDHUP != 0)
	}
}

// readsOn reports whether the next event for lc would read it (handle's
// default case): lc is open, and neither writing, draining nor stalled.
func (l *loop) readsOn(lc *loopConn) bool {
	return l.connAt(lc.fd) == lc && lc.pending == nil && !lc.draining && !lc.stalled()
}

// readLimit is how much echo may read: at most BufferSize when data is
// logged (the seed's reads), and after Shutdown's deadline only what the
// peer had sent before it.
func (l *loop) readLimit(lc *loopConn) []byte {
	buf := l.buf[:l.readSize]
	if lc.stopped {
		return buf[:min(int(lc.final), len(buf))]
	}
	return buf
}

// echo reads what the peer sent and writes it back. hup is that the
// peer had ended its stream (EPOLLRDHUP) before the read: a read that
// then takes less than it could has emptied the socket, so the stream
// ends there, without another wait and read to be told so.
func (l *loop) echo(lc *loopConn, hup bool) {
	buf := l.readLimit(lc)
	n, err := netpoll.Retry(func() (int, error) { return netpoll.Read(int(lc.fd), buf) })
	switch {
	case err == unix.EAGAIN:
		return
	case err != nil || n == 0:
		l.readEnded(lc, err)
		return
	}
	if lc.run != nil {
		l.echoStaged(lc, lc.run, buf[:n])
	} else {
		l.got(lc, buf[:n])
		l.writeBack(lc, buf[:n])
	}
	if hup && n < len(buf) && !lc.stopped && l.readsOn(lc) {
		l.readEnded(lc, nil)
	}
}

// got accounts for p, a chunk just read, before it is written back.
func (l *loop) got(lc *loopConn, p []byte) {
	if lc.stopped {
		lc.final -= int32(len(p))
	}
	if l.sweepEvery > 0 {
		lc.movedAt = l.now()
	}
	if t := lc.received(len(p)); !t.IsZero() {
		lc.readAt = int64(t.Sub(l.epoch))
	}
	if l.logsData && !lc.stopped {
		lc.logData("received ", p)
	}
	lc.written = 0
}

// writeBack writes p, the rest of the current chunk, to the peer; what the
// socket does not take now is kept, and reading waits until it is
// written.
func (l *loop) writeBack(lc *loopConn, p []byte) {
	m, err := netpoll.Retry(func() (int, error) { return netpoll.Write(int(lc.fd), p) })
	if err != nil && err != unix.EAGAIN {
		l.cut(lc, p, int(lc.written)+max(m, 0))
		l.fail(lc, "write", err)
		return
	}
	m = max(m, 0)
	lc.written += int32(m)
	if m > 0 && l.sweepEvery > 0 {
		lc.movedAt = l.now()
	}
	if m == len(p) {
		chunk := p
		if lc.pending != nil {
			chunk = lc.pending.buf[:lc.written]
		}
		l.chunkDone(lc, chunk, true)
		return
	}
	if lc.pending == nil {
		// p is the whole chunk: keep it all, for the "sent" log line.
		pw := pendingWrites.Get().(*pendingWrite)
		pw.buf = append(pw.buf[:0], p...)
		pw.rest = pw.buf[m:]
		lc.pending = pw
		l.watch(lc, unix.EPOLLOUT)
		return
	}
	lc.pending.rest = lc.pending.rest[m:]
}

// chunkDone finishes a chunk written in full: it logs it and reports it
// to the observer if it is an echo, and reads again.
func (l *loop) chunkDone(lc *loopConn, chunk []byte, echo bool) {
	if echo && l.logsData && !lc.stopped {
		lc.logData("sent ", chunk)
	}
	l.releasePending(lc)
	if echo {
		l.sent(lc, int(lc.written), true)
	}
	if lc.stopped && lc.final == 0 {
		if run := lc.run; echo && run != nil && run.enders != nil && run.ending(false) != endNone {
			return // a fault's ending, due at the end of what was owed: writeStaged acts on it
		}
		l.shutWrite(lc)
	}
}

// dropPending returns lc's pending buffer to the pool, if it has one.
func (lc *loopConn) dropPending() bool {
	pw := lc.pending
	if pw == nil {
		return false
	}
	pw.rest, pw.unacked = nil, 0
	pendingWrites.Put(pw)
	lc.pending = nil
	return true
}

// flush goes on writing what a full socket did not take.
func (l *loop) flush(lc *loopConn) {
	if lc.run != nil {
		l.writeStaged(lc, lc.run)
		return
	}
	l.writeBack(lc, lc.pending.rest)
}

func (l *loop) releasePending(lc *loopConn) {
	if !lc.dropPending() {
		return
	}
	if !lc.draining && (!lc.stopped || lc.final > 0) {
		l.watch(lc, unix.EPOLLIN|unix.EPOLLRDHUP)
	}
}

// cut ends lc's current chunk after n of its bytes were written (a failed
// write, a write timeout, a fault's ending): the transcript shows the part
// that went, when data is logged, and the observer that the chunk failed.
// chunk is the chunk if it is not held in lc's pending write (a first
// write, from the loop's read buffer).
func (l *loop) cut(lc *loopConn, chunk []byte, n int) {
	if lc.pending != nil {
		chunk = lc.pending.buf
	}
	if n > 0 && l.logsData && !lc.stopped {
		lc.logData("sent ", chunk[:min(n, len(chunk))])
	}
	l.sent(lc, n, false)
}

// sent reports a chunk written back (or, if !ok, failed) to the observer
// (conn.sent), with its read time on the loop's clock.
func (l *loop) sent(lc *loopConn, n int, ok bool) {
	if lc.obs == nil {
		return // spares the clock's arithmetic on the fast path
	}
	lc.sent(n, ok, l.epoch.Add(time.Duration(lc.readAt)))
}

// watch sets the events epoll waits for on lc's socket.
func (l *loop) watch(lc *loopConn, events uint32) {
	if err := l.poll.Mod(int(lc.fd), events, netpoll.KindConn); err != nil {
		l.fail(lc, "epoll_ctl", err)
	}
}

// stop is Shutdown's deadline for lc: it reads only what the peer sent
// before it (the receive queue now) and writes all it read back, then it
// sends FIN and discards what the peer sends until drainLinger has passed
// (closeForShutdown's lingering close).
func (l *loop) stop(lc *loopConn) {
	if lc.stopped {
		return
	}
	lc.stopped = true
	if lc.run != nil {
		lc.run.unpaced.Store(true) // what is owed goes whole (stageRun.next)
	}
	lc.stopBy = l.now() + int64(drainLinger)
	lc.final = int32(min(queuedBytesFD(int(lc.fd)), math.MaxInt32))
	lc.stopping.Store(true)
	lc.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
	if lc.stalled() || lc.pending == nil && lc.final == 0 {
		// Nothing owed (a stalled connection owes nothing: its fault
		// says so): FIN now, and what the peer sends is read and
		// dropped, so that the close is not a reset for unread bytes.
		l.shutWrite(lc)
		return
	}
	if run := lc.held(); run != nil {
		// What a stage holds is owed: write it now, without its waits.
		run.due = 0
		l.writeStaged(lc, run)
	}
}

// shutWrite sends FIN and from then on discards what the peer sends.
// If the peer has gone already (its reset came first: shutdown(2) finds
// the socket unconnected), there is nothing to drain: the connection
// closes at once, for the reason it was being closed for (a fault's
// close, or Shutdown).
func (l *loop) shutWrite(lc *loopConn) {
	if err := unix.Shutdown(int(lc.fd), unix.SHUT_WR); err != nil {
		l.close(lc, l.drainedReason(lc), nil)
		return
	}
	lc.draining = true
	l.watch(lc, unix.EPOLLIN|unix.EPOLLRDHUP)
}

// discard reads and drops what a peer sends after FIN, until it ends.
func (l *loop) discard(lc *loopConn) {
	n, err := netpoll.Retry(func() (int, error) { return netpoll.Read(int(lc.fd), l.buf) })
	if err == unix.EAGAIN {
		return
	}
	if err != nil || n == 0 {
		l.close(lc, l.drainedReason(lc), nil)
	}
}

// sweep closes the connections on which no byte has moved for longer than
// IdleTimeout, or whose write back has made no progress for longer than
// WriteTimeout (writeStall), as the goroutine engine's deadlines do
// (timeouts.go). It runs at most every sweepEvery, a sixteenth of the
// shorter timeout, so a timeout fires between itself and a sixteenth more
// after the last byte moved, never before.
func (l *loop) sweep(now int64) {
	expired := l.expired[:0]
	l.mu.Lock()
	for _, lc := range l.conns {
		if lc == nil || lc.stopped || lc.draining {
			continue // Shutdown's deadline rules it
		}
		if lc.held() != nil {
			continue // a stage holds its echo: not the peer's stall
		}
		if run := lc.run; run != nil && run.reading() > 0 {
			continue // open stages read within their own bound (timerOpen)
		}
		limit := l.idle
		if lc.pending != nil {
			limit = l.stall
			if now-lc.movedAt >= l.sweepEvery && drained(lc) {
				lc.movedAt = now
			}
		}
		if limit > 0 && now-lc.movedAt >= limit {
			expired = append(expired, lc)
		}
	}
	l.mu.Unlock()
	for i, lc := range expired {
		op := "read"
		if lc.pending != nil {
			op = "write"
			if run := lc.run; run == nil || !run.greets { // a greeting is not an echo
				l.cut(lc, nil, int(lc.written))
			}
		}
		err := &opError{op, os.ErrDeadlineExceeded}
		l.close(lc, lc.closeReason(err), err)
		expired[i] = nil
	}
	l.expired = expired[:0]
}

// drained reports whether the peer has taken bytes from lc's send queue
// since the sweep last asked (SIOCOUTQ: what the peer has not yet
// acknowledged, or on a Unix socket read). A write back waits for epoll to
// report the socket writable, which it does only once a third of the send
// buffer is free: a peer reading steadily but slowly can take longer than
// the write stall limit to free that much, and it is progress all the
// same.
func drained(lc *loopConn) bool {
	q, err := sendQueuedFD(int(lc.fd))
	if err != nil {
		return false
	}
	pw := lc.pending
	took := pw.unacked > 0 && q < pw.unacked-1
	pw.unacked = q + 1
	return took
}

// readEnded closes lc, whose read found the end of the peer's stream (err
// nil) or failed: for that, unless its open stages are still reading and
// say why it closes (stageRun.cutShort: a PROXY header cut short).
func (l *loop) readEnded(lc *loopConn, err error) {
	if run := lc.run; run != nil && !lc.stopped && run.reading() > 0 {
		cause := error(io.EOF)
		if err != nil {
			cause = os.NewSyscallError("read", err)
		}
		if cerr := run.cutShort(cause); cerr != nil {
			oerr := &opError{"open", cerr}
			l.close(lc, lc.closeReason(oerr), oerr)
			return
		}
	}
	if err != nil {
		l.fail(lc, "read", err)
		return
	}
	l.close(lc, CloseEOF, nil)
}

// fail closes lc after a failed system call.
func (l *loop) fail(lc *loopConn, op string, err error) {
	oerr := &opError{op, os.NewSyscallError(op, err)}
	reason := lc.closeReason(oerr)
	if lc.stopped {
		reason = CloseShutdown
	}
	l.close(lc, reason, oerr)
}

// close closes lc's socket and ends the connection: logs, observer,
// limits, and the Server's count of open connections.
func (l *loop) close(lc *loopConn, reason CloseReason, err error) {
	if !l.forget(lc) {
		return
	}
	// Logged before the socket closes, as the goroutine engine and the
	// seed do: a peer that has seen the end of its echo finds the
	// connection's log complete.
	if !lc.stopped { // a stopped connection logged its closing already
		if err == nil {
			err = errReadEOF
			if reason == CloseShutdown {
				err = errReadClosed
			}
		}
		lc.logClose(err, reason)
	}
	netpoll.Close(int(lc.fd)) // also takes it out of the epoll set
	lc.dropPending()
	if run := lc.run; run != nil {
		l.timers.removeAll(run)
		lc.run = nil
		if len(l.spareRuns) < maxSpareRuns { // a next connection's
			run.reset()
			l.spareRuns = append(l.spareRuns, run)
		}
	}
	lc.finish(reason)
}

package echo

import (
	"crypto/tls"
	"sync/atomic"
	"syscall"
	"time"
)

// writeWatch keeps the goroutine engine's write stall limit from cutting
// off a peer that reads slowly but steadily. A write back blocks until the
// socket is reported writable, which it is only once a third of its send
// buffer is free: a peer reading a few hundred kilobytes a second can take
// longer than the limit to free that much of a buffer of megabytes, and
// the write's deadline would pass while the peer is reading all along.
// While a write blocks, the watch looks at the socket's send queue every
// sixteenth of the limit (sendQueued: what the peer has not yet
// acknowledged) and, when it has shrunk, moves the write deadline on. The
// deadline must not pass while the peer reads: a TLS connection whose
// write timed out is broken for good. The event loops do the same in their
// sweep (drained).
type writeWatch struct {
	c      *goConn
	rc     syscall.RawConn // the socket, below TLS
	t      *time.Timer
	active atomic.Bool  // a write is blocked
	queued atomic.Int64 // the send queue when last looked, plus one; 0: not looked
}

// watchWrite starts watching the write back about to block, if the
// connection has a write stall limit and a socket to look at; the caller
// calls done when the write returns.
func (c *goConn) watchWrite(stall time.Duration) *writeWatch {
	if c.watch == nil {
		rc := socketOf(c.rwc)
		if rc == nil {
			return nil
		}
		c.watch = &writeWatch{c: c, rc: rc}
		c.watch.t = time.AfterFunc(time.Hour, func() { c.watch.look(stall) })
	}
	w := c.watch
	w.queued.Store(0)
	w.active.Store(true)
	w.t.Reset(stall / deadlineSlack)
	return w
}

// done ends the watch of a write that returned.
func (w *writeWatch) done() {
	if w != nil {
		w.active.Store(false)
		w.t.Stop()
	}
}

// look moves the write deadline on if the peer took bytes from the send
// queue since the last look, and looks again later while the write blocks.
func (w *writeWatch) look(stall time.Duration) {
	if !w.active.Load() {
		return
	}
	q, ok := sendQueued(w.rc)
	if !ok {
		return
	}
	if prev := w.queued.Swap(int64(q) + 1); prev > 0 && int64(q) < prev-1 {
		w.c.setWriteDeadline(time.Now().Add(stall + stall/deadlineSlack))
	}
	w.t.Reset(stall / deadlineSlack)
}

// socketOf returns the socket under a connection, TLS's included, or nil
// for a connection that hides it.
func socketOf(c any) syscall.RawConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

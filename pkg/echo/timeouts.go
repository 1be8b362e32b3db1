package echo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// MaxTimeout bounds Server.IdleTimeout and Server.WriteTimeout: 10000
// hours, over a year. Deadlines are set a sixteenth beyond a timeout
// (deadlineSlack), and a duration near the largest time.Duration would
// overflow that sum into the past and close every connection at once; a
// limit far below it, and a round number, leaves no doubt. A connection
// that may stay idle for ever wants a timeout of zero.
const MaxTimeout = 10000 * time.Hour

// validateTimeouts checks IdleTimeout and WriteTimeout against MaxTimeout
// (negative ones mean zero).
func (s *Server) validateTimeouts() error {
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"idle timeout", s.IdleTimeout}, {"write timeout", s.WriteTimeout}} {
		if t.d > MaxTimeout {
			return fmt.Errorf("%w: %s %s (must be at most %s)", ErrInvalidTimeout, t.name, FormatDuration(t.d), FormatDuration(MaxTimeout))
		}
	}
	return nil
}

// idleTimeout is IdleTimeout, or 0 for none. It and writeStall are read
// from the Server, not kept in each connection: the same for all, and 16
// bytes less an idle connection.
func (s *Server) idleTimeout() time.Duration { return max(s.IdleTimeout, 0) }

// writeStall is how long a write back may make no progress before the
// connection is closed: WriteTimeout, or IdleTimeout when that is shorter
// (no byte moves either way while a write is stuck), or 0 for no limit.
func (s *Server) writeStall() time.Duration {
	w, i := max(s.WriteTimeout, 0), max(s.IdleTimeout, 0)
	switch {
	case w == 0:
		return i
	case i == 0:
		return w
	}
	return min(w, i)
}

func (s *Server) logMaxBytes() int {
	if s.LogMaxBytes == 0 {
		return DefaultLogMaxBytes
	}
	return s.LogMaxBytes
}

// guardConn sets up c's timeouts and observer for a connection from peer
// just accepted on the listener lconf.
func (s *Server) guardConn(c *conn, lconf *listenerConf, peer peerAddr) {
	c.lconf = lconf
	if s.Observer != nil {
		c.obs = s.Observer.ConnAccepted(lconf.name, peer.netAddr())
	}
}

// deadlineSlack is the fraction of a timeout by which armRead and
// armWrite set deadlines beyond it, so that they need to move them only
// once in that much time rather than before every read and write (each
// move takes a lock and resets a timer). A timeout then fires between
// itself and 1/16 more after the last progress; never before.
const deadlineSlack = 16

// armRead starts the idle timeout before a read: the read fails with
// os.ErrDeadlineExceeded if nothing arrives for IdleTimeout. (Nothing is
// being written back while the connection waits to read, so that is a
// connection on which no byte moves either way.)
func (c *goConn) armRead() {
	idle := c.srv.idleTimeout()
	if idle <= 0 {
		return
	}
	now := time.Now()
	if !c.readBy.Before(now.Add(idle)) {
		return // the deadline set is still far enough
	}
	c.readBy = now.Add(idle + idle/deadlineSlack)
	c.rwc.SetReadDeadline(c.readBy)
	// Shutdown may have set its own deadline between the check in the
	// caller and the line above: keep Shutdown's.
	if c.stopping.Load() {
		c.rwc.SetReadDeadline(aLongTimeAgo)
	}
}

// armWrite makes sure the write deadline is at least the write stall
// limit away.
func (c *goConn) armWrite() {
	stall, now := c.srv.writeStall(), time.Now()
	if !c.writeBy.Before(now.Add(stall)) {
		return
	}
	c.writeBy = now.Add(stall + stall/deadlineSlack)
	c.setWriteDeadline(c.writeBy)
}

// received reports n bytes read to the observer and returns when they were
// read, to measure the echo latency; without an observer it does nothing
// and returns the zero time.
func (c *conn) received(n int) time.Time {
	if c.obs == nil {
		return time.Time{}
	}
	c.obs.Received(n)
	return time.Now()
}

// write writes p back to the peer, reporting it to the observer with the
// latency since readAt; its stages, if it has any, may cut it into pieces
// and hold them (writePaced).
func (c *goConn) write(p []byte, readAt time.Time) error {
	var n int
	var err error
	if c.run == nil || len(c.run.pacers) == 0 {
		n, err = c.writeAll(p)
	} else {
		n, err = c.writePaced(p)
	}
	c.sent(n, err == nil, readAt)
	if err != nil {
		return &opError{"write", err}
	}
	return nil
}

// writeAll writes p. With a write stall limit (WriteTimeout or
// IdleTimeout) each stretch of that long without progress fails the
// write; a write that progresses, however slowly, goes on.
func (c *goConn) writeAll(p []byte) (n int, err error) {
	if c.srv.writeStall() <= 0 {
		return c.rwc.Write(p)
	}
	for {
		c.armWrite()
		var m int
		m, err = c.rwc.Write(p[n:])
		n += m
		if err == nil || m == 0 || c.stopping.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
	}
}

// sent reports to the observer a chunk written back: n bytes and, if ok,
// the echo latency since readAt (conn.received); if not, a negative one.
// Both engines call it, once per chunk, when its last byte is written or
// its write fails.
func (c *conn) sent(n int, ok bool, readAt time.Time) {
	if c.obs == nil {
		return
	}
	latency := time.Duration(-1)
	if ok {
		latency = time.Since(readAt)
	}
	c.obs.Sent(n, latency)
}

// setWriteDeadline sets the write deadline to t, or to Shutdown's when
// Shutdown has stopped the connection and wants it done sooner.
func (c *goConn) setWriteDeadline(t time.Time) {
	c.rwc.SetWriteDeadline(t)
	if c.stopping.Load() {
		if by := time.Unix(0, c.stopWriteBy.Load()); by.Before(t) {
			c.rwc.SetWriteDeadline(by)
		}
	}
}

// closeReason classifies the error that ended the echo loop.
func (c *conn) closeReason(err error) CloseReason {
	var op *opError
	isWrite := errors.As(err, &op) && op.op == "write"
	var refused interface{ closeReason() CloseReason } // proxy.go, limits.go
	switch {
	case errors.As(err, &refused):
		return refused.closeReason()
	case errors.Is(err, errFault):
		if c.stopping.Load() || c.srv.shuttingDown() {
			return CloseShutdown // a stall that Shutdown or Close ended
		}
		return CloseFault
	case errors.Is(err, io.EOF):
		return CloseEOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		switch {
		case c.stopping.Load():
			return CloseShutdown
		case isWrite && c.srv.WriteTimeout > 0 && c.srv.writeStall() == c.srv.WriteTimeout:
			return CloseWriteTimeout
		case c.srv.idleTimeout() > 0:
			return CloseIdle
		}
	case errors.Is(err, net.ErrClosed):
		if c.srv.shuttingDown() {
			return CloseShutdown
		}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return CloseReset
	}
	return CloseError
}

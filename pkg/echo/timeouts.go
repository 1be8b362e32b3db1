package echo

import (
	"fmt"
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

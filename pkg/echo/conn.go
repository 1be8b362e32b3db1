package echo

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// conn is the server side of one echo connection.
type conn struct {
	srv  *Server
	rwc  net.Conn
	name string // the per-connection logger name, echo_{host}_{port}
	peer string // the peer's address as host:port

	// stopping is set by Shutdown when its context ends: the connection
	// stops reading, writes back what it read and closes.
	stopping atomic.Bool
}

// LoggerName returns the name of the per-connection logger for a peer:
// "echo_{host}_{port}" as in the seed (echo_::1_64624, echo_127.0.0.1_51234).
// Addresses without a port are named "echo_{address}".
func LoggerName(peer net.Addr) string {
	if peer == nil {
		return "echo_unknown"
	}
	s := peer.String()
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "echo_" + s
	}
	return "echo_" + host + "_" + port
}

func (s *Server) newConn(rwc net.Conn) *conn {
	return &conn{srv: s, rwc: rwc, name: LoggerName(rwc.RemoteAddr()), peer: rwc.RemoteAddr().String()}
}

// log starts a log event at level carrying the connection's logger name and
// peer; it returns nil (and costs nothing) when the level is disabled.
func (c *conn) log(level zerolog.Level) *zerolog.Event {
	e := c.srv.Logger.WithLevel(level)
	if e == nil {
		return nil
	}
	return e.Str("logger", c.name).Str("peer", c.peer)
}

// logData logs a chunk of echoed data at debug level as the seed does:
// "received b'...'" or "sent b'...'".
func (c *conn) logData(verb string, data []byte) {
	if e := c.log(zerolog.DebugLevel); e != nil {
		msg := AppendQuote(append(make([]byte, 0, len(verb)+len(data)+8), verb...), data)
		e.Int("bytes", len(data)).Msg(string(msg))
	}
}

// serve runs the seed's echo loop: read up to BufferSize bytes, write them
// back, wait for the write to finish, repeat until the peer half-closes.
func (c *conn) serve() {
	defer func() {
		if r := recover(); r != nil {
			c.log(zerolog.ErrorLevel).Interface("panic", r).Msg("panic serving connection")
		}
		c.rwc.Close()
		c.srv.trackConn(c, false)
	}()
	c.log(zerolog.InfoLevel).Msg("connection accepted")

	buf := make([]byte, c.srv.bufferSize())
	for {
		n, err := c.rwc.Read(buf)
		if n > 0 {
			c.logData("received ", buf[:n])
			if _, werr := c.rwc.Write(buf[:n]); werr != nil {
				c.logClose("write", werr)
				return
			}
			c.logData("sent ", buf[:n])
		}
		if err != nil {
			if c.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				c.closeForShutdown(buf)
				return
			}
			c.logClose("read", err)
			return
		}
	}
}

// logClose logs why the connection ends: "closing" at info for end of stream,
// a warning naming the failed operation otherwise.
func (c *conn) logClose(op string, err error) {
	if !errors.Is(err, io.EOF) {
		if e := c.log(zerolog.WarnLevel); e != nil {
			e.Err(err).Msgf("%s error: %v", op, err)
		}
	}
	c.log(zerolog.InfoLevel).Msg("closing")
}

// stopReading makes serve stop at its next read, for a Shutdown whose
// context ended: what was read is still written back (if the peer reads
// within drainLinger), then the connection closes cleanly.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	now := time.Now()
	c.rwc.SetReadDeadline(now)
	c.rwc.SetWriteDeadline(now.Add(drainLinger))
}

// closeForShutdown ends a connection that is still open when the shutdown
// deadline passes: it sends FIN, then reads and discards what the peer still
// sends for up to drainLinger (a lingering close, as nginx does), so that the
// peer sees an orderly end of stream rather than a reset.
func (c *conn) closeForShutdown(buf []byte) {
	c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() != nil {
			return
		}
	}
	c.rwc.SetReadDeadline(time.Now().Add(drainLinger))
	for {
		if _, err := c.rwc.Read(buf); err != nil {
			return
		}
	}
}

package echo

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
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

	connGuard // limits, timeouts and observer (limits.go, timeouts.go)

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

// addrPortConn is a connection that keeps its peer's address unboxed
// (fdConn): naming it and checking it need not make a net.Addr.
type addrPortConn interface {
	remoteAddrPort() netip.AddrPort
}

// ipString formats ip as net.IP's String does: an IPv4-mapped address as
// IPv4, a zone after "%".
func ipString(ip netip.Addr) string {
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	return ip.String()
}

func (s *Server) newConn(rwc net.Conn) *conn {
	if local := rwc.LocalAddr(); local != nil && local.Network() == "unix" {
		// A Unix peer has no address: number the connections instead, and
		// show the socket path as the peer.
		return &conn{srv: s, rwc: rwc, name: unixConnName(s.unixConns.Add(1)), peer: local.String()}
	}
	if apc, ok := rwc.(addrPortConn); ok {
		ap := apc.remoteAddrPort()
		host, port := ipString(ap.Addr()), strconv.Itoa(int(ap.Port()))
		return &conn{srv: s, rwc: rwc, name: "echo_" + host + "_" + port, peer: net.JoinHostPort(host, port)}
	}
	return &conn{srv: s, rwc: rwc, name: LoggerName(rwc.RemoteAddr()), peer: rwc.RemoteAddr().String()}
}

func (c *conn) logAccepted() { c.log(zerolog.InfoLevel).Msg("connection accepted") }

// isTLS reports whether the connection starts with a TLS handshake.
func (c *conn) isTLS() bool {
	_, ok := c.rwc.(*tls.Conn)
	return ok
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
		limit := c.srv.logMaxBytes()
		shown := len(data)
		if limit >= 0 {
			shown = min(shown, limit)
		}
		msg := AppendQuoteMax(append(make([]byte, 0, len(verb)+shown+32), verb...), data, limit)
		e.Int("bytes", len(data)).Msg(string(msg))
	}
}

// serve runs one connection on its own goroutine (the goroutine engine;
// see engineFor): it completes a TLS handshake, echoes until the peer
// half-closes or the connection fails, and logs why it closed.
func (c *conn) serve() {
	reason := CloseError
	var err error
	defer func() {
		if r := recover(); r != nil {
			c.log(zerolog.ErrorLevel).Interface("panic", r).Msg("panic serving connection")
			reason = CloseError
		}
		c.close(err)
		c.finish(reason)
	}()
	if !c.handshake() { // TLS only (tls.go)
		if c.srv.shuttingDown() {
			reason = CloseShutdown
		}
		return
	}
	if c.isTLS() {
		c.logAccepted() // after the handshake, which may refuse the peer
	}

	err = c.echo()
	reason = c.closeReason(err)
	if c.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		if c.tlsWriteFailed(err) {
			// Its last write back did not finish by Shutdown's
			// deadline: close at once (close), as closeForShutdown's
			// half-close would wait for close_notify.
			c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
			return
		}
		c.closeForShutdown()
		return
	}
	c.logClose(err, reason)
}

// echo is the goroutine engine's echo loop: read, write all of it back,
// wait for the write to finish, repeat until end of stream. When data is
// logged it reads at most BufferSize bytes at a time, the seed's reads,
// and logs each chunk when read and once written back; otherwise it reads
// into a pooled buffer of fastBufferSize, so that bulk transfers move in
// few system calls. Either way it writes everything it read before it
// reads again, so a peer that does not read stalls only itself.
func (c *conn) echo() error {
	logs := c.srv.logsData()
	var buf []byte
	if logs {
		buf = make([]byte, c.srv.bufferSize())
	} else {
		bufp := fastBuffers.Get().(*[]byte)
		defer fastBuffers.Put(bufp)
		buf = *bufp
	}
	for {
		c.armRead()
		n, err := c.rwc.Read(buf)
		if n > 0 {
			if logs {
				c.logData("received ", buf[:n])
			}
			if werr := c.write(buf[:n], c.received(n)); werr != nil {
				return werr
			}
			if logs {
				c.logData("sent ", buf[:n])
			}
		}
		if err != nil {
			return &opError{"read", err}
		}
	}
}

// finish accounts for a connection whose socket is closed: it gives back
// what the limits counted, tells the observer why it closed, and lets
// Shutdown and Close stop waiting for it.
func (c *conn) finish(reason CloseReason) {
	c.srv.release(c)
	if c.obs != nil {
		c.obs.Closed(reason)
	}
	c.srv.trackConn(c, false)
}

// opError records which operation on the connection failed.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + " error: " + rootCause(e.err).Error() }
func (e *opError) Unwrap() error { return e.err }

// logClose logs why the connection ends: "closing" at info, with the
// reason, preceded by a line that says what happened unless the peer
// simply ended the stream: info for an idle timeout, warn for a write
// timeout or any other error.
func (c *conn) logClose(err error, reason CloseReason) {
	switch reason {
	case CloseEOF:
	case CloseIdle:
		if e := c.log(zerolog.InfoLevel); e != nil {
			e.Dur("idle_timeout", c.idle).Msgf("idle timeout: no bytes either way for %v", c.idle)
		}
	case CloseWriteTimeout:
		if e := c.log(zerolog.WarnLevel); e != nil {
			e.Dur("write_timeout", c.stall).Msgf("write timeout: the peer read none of the echo for %v", c.stall)
		}
	default:
		if e := c.log(zerolog.WarnLevel); e != nil {
			e.Err(err).Msg(err.Error())
		}
	}
	if e := c.log(zerolog.InfoLevel); e != nil {
		e.Str("reason", reason.String()).Msg("closing")
	}
}

// stopReading makes serve stop at its next read, for a Shutdown whose
// context ended: what was read is still written back (if the peer reads
// within drainLinger), then the connection closes cleanly.
func (c *conn) stopReading() {
	if c.loopOwned() {
		return // its loop stops it (loop_linux.go)
	}
	now := time.Now()
	c.stopWriteBy.Store(now.Add(drainLinger).UnixNano())
	c.stopping.Store(true)
	c.rwc.SetReadDeadline(now)
	c.rwc.SetWriteDeadline(now.Add(drainLinger))
}

// closeForShutdown ends a connection that is still open when the shutdown
// deadline passes: it writes back what the peer sent before the deadline
// and the server had not read yet, sends FIN, then reads and discards what
// the peer still sends until drainLinger after the deadline (a lingering
// close, as nginx does), so that the peer sees an orderly end of stream
// rather than a reset.
func (c *conn) closeForShutdown() {
	c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
	c.echoQueued()
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() != nil {
			return
		}
	}
	c.rwc.SetReadDeadline(time.Unix(0, c.stopWriteBy.Load()))
	bufp := fastBuffers.Get().(*[]byte)
	defer fastBuffers.Put(bufp)
	buf := *bufp
	for {
		if _, err := c.rwc.Read(buf); err != nil {
			return
		}
	}
}

// echoQueued writes back the bytes waiting unread in the socket's receive
// queue when the shutdown deadline passed (all the peer sent before it),
// within drainLinger.
func (c *conn) echoQueued() {
	n := queuedBytes(c.rwc)
	if n == 0 {
		return
	}
	c.rwc.SetReadDeadline(time.Unix(0, c.stopWriteBy.Load()))
	bufp := fastBuffers.Get().(*[]byte)
	defer fastBuffers.Put(bufp)
	buf := *bufp
	for n > 0 {
		m, err := c.rwc.Read(buf[:min(n, len(buf))])
		if m > 0 {
			if c.write(buf[:m], c.received(m)) != nil {
				return
			}
			n -= m
		}
		if err != nil {
			return
		}
	}
}

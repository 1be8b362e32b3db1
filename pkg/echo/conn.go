package echo

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"
)

// conn is one connection's policy, the same whichever engine moves its
// bytes (engineFor): its logger name and peer, the limits and timeouts that
// apply to it, its observer, why it closed and how that is logged. Each
// engine keeps its own I/O state beside it — goConn (goconn.go) a net.Conn
// and its deadlines, loopConn (loop_conn_linux.go) a raw socket and what a
// loop keeps for it — and embeds a conn.
type conn struct {
	srv  *Server
	io   connIO // the engine's side of the connection
	name string // the per-connection logger name, echo_{host}_{port}
	peer string // the peer's address as host:port

	connGuard // limits, timeouts and observer (limits.go, timeouts.go)

	// proxy is what the connection's PROXY header said (proxy.go); nil
	// without one.
	proxy *proxied

	// stopping is set by Shutdown when its context ends: the connection
	// stops reading, writes back what it read and closes.
	stopping atomic.Bool

	// acceptLater: the connection is logged as accepted once its TLS
	// handshake has passed (goConn.serve), not when accepted or when its
	// PROXY header has come.
	acceptLater bool
	// heard: the peer has sent a byte to echo (conn.received). One that
	// goes without (a health check, tcping, a port scan) and resets the
	// connection, or is gone when its greeting is written, is logged at
	// debug level, not warned about (logClose).
	heard bool
}

// connIO is what the shared policy asks of the engine that serves a
// connection, from any goroutine.
type connIO interface {
	// stop is Shutdown's deadline: stop reading what arrives from now on,
	// write back what the peer sent before it, send FIN, discard what
	// the peer still sends for up to drainLinger, and close.
	stop()
	// abort closes the connection at once, as Server.Close does.
	abort()
}

// peerAddr is a connection's peer as its engine knows it: a net.Addr (the
// goroutine engine's net.Conn), or an address and port unboxed (the event
// loops', from accept4), so that naming the peer and checking it need not
// make a net.Addr.
type peerAddr struct {
	addr net.Addr
	ap   netip.AddrPort
	unix bool // with no addr: an unnamed Unix socket
}

// netAddr returns the peer as a net.Addr, for the Observer.
func (p peerAddr) netAddr() net.Addr {
	switch {
	case p.addr != nil:
		return p.addr
	case p.unix:
		return &net.UnixAddr{Name: "@", Net: "unix"} // as net names an unnamed peer
	}
	return net.TCPAddrFromAddrPort(p.ap)
}

// ip returns the peer's IP address, unmapped and without zone, and false
// for peers that have none (Unix sockets).
func (p peerAddr) ip() (netip.Addr, bool) {
	switch {
	case p.addr != nil:
		return peerIP(p.addr)
	case p.unix:
		return netip.Addr{}, false
	}
	return addrPortIP(p.ap)
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

// ipString formats ip as net.IP's String does: an IPv4-mapped address as
// IPv4, a zone after "%".
func ipString(ip netip.Addr) string {
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	return ip.String()
}

// nameConn gives c, a connection accepted on a listener whose address is
// local, its logger name and peer: echo_{host}_{port} and host:port, or,
// on a Unix socket, whose peers have no address, echo_unix_{n} and the
// socket's path.
func (s *Server) nameConn(c *conn, local net.Addr, peer peerAddr) {
	switch {
	case local != nil && local.Network() == "unix":
		c.name, c.peer = unixConnName(s.unixConns.Add(1)), local.String()
	case peer.addr == nil:
		c.name, c.peer = addrPortNames(peer.ap)
	case unnamedUnix(peer.addr):
		// A Unix client with no path (a PROXY header's, unnamed):
		// numbered, as this server's own Unix peers are.
		c.name, c.peer = unixConnName(s.unixConns.Add(1)), ""
	default:
		c.name, c.peer = LoggerName(peer.addr), peer.addr.String()
	}
}

// unnamedUnix reports whether a is a Unix socket address with no path.
func unnamedUnix(a net.Addr) bool {
	ua, ok := a.(*net.UnixAddr)
	return ok && ua.Name == ""
}

// addrPortNames returns the logger name and peer of a connection from ap:
// echo_{host}_{port} and host:port ([host]:port for IPv6), the host as
// ipString writes it. Both are made in one buffer and one string: it runs
// for every connection accepted.
func addrPortNames(ap netip.AddrPort) (name, peer string) {
	ip := ap.Addr()
	if !ip.IsValid() {
		host, port := ipString(ip), strconv.Itoa(int(ap.Port()))
		return "echo_" + host + "_" + port, net.JoinHostPort(host, port)
	}
	ip = ip.Unmap()
	var nb [160]byte // the longest zone makes it grow: still right
	n := append(nb[:0], "echo_"...)
	n = ip.AppendTo(n)
	hostEnd := len(n)
	n = append(n, '_')
	portStart := len(n)
	n = strconv.AppendUint(n, uint64(ap.Port()), 10)
	nameEnd := len(n)
	if ip.Is6() {
		n = append(n, '[')
	}
	n = append(n, n[len("echo_"):hostEnd]...)
	if ip.Is6() {
		n = append(n, ']')
	}
	n = append(append(n, ':'), n[portStart:nameEnd]...)
	both := string(n)
	return both[:nameEnd], both[nameEnd:]
}

// logAccepted logs the connection's accept line: "connection accepted",
// or after a PROXY header the line that names the balancer and the header
// (proxied.acceptedLine).
func (c *conn) logAccepted() {
	e := c.log(zerolog.InfoLevel)
	if e == nil {
		return
	}
	if p := c.proxy; p != nil {
		line := p.acceptedLine(p.header.hasAddrs())
		e.Str("proxy", p.summary).Msg(line)
		return
	}
	e.Msg("connection accepted")
}

// log starts a log event at level carrying the connection's logger name and
// peer; it returns nil (and costs nothing) when the level is disabled.
func (c *conn) log(level zerolog.Level) *zerolog.Event {
	e := c.srv.Logger.WithLevel(level)
	if e == nil {
		return nil
	}
	e = e.Str("logger", c.name).Str("peer", c.peer)
	if c.proxy != nil && c.proxy.via != "" {
		e = e.Str("via", c.proxy.via)
	}
	return e
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

// The ends a loop reports for a connection it closes without an error
// (loop.close): the peer's end of stream, or Shutdown's close. Shared, as
// no one changes an opError.
var (
	errReadEOF    error = &opError{"read", io.EOF}
	errReadClosed error = &opError{"read", net.ErrClosed}
)

func (e *opError) Error() string { return e.op + " error: " + rootCause(e.err).Error() }
func (e *opError) Unwrap() error { return e.err }

// logClose logs why the connection ends: "closing" at info, with the
// reason, preceded by a line that says what happened unless the peer
// simply ended the stream: info for an idle timeout, warn for a write
// timeout or any other error.
func (c *conn) logClose(err error, reason CloseReason) {
	switch reason {
	case CloseEOF, CloseFault:
	case CloseIdle:
		if e := c.log(zerolog.InfoLevel); e != nil {
			idle := c.srv.idleTimeout()
			e.Dur("idle_timeout", idle).Msg("idle timeout: no bytes either way for " + FormatDuration(idle))
		}
	case CloseWriteTimeout:
		if e := c.log(zerolog.WarnLevel); e != nil {
			stall := c.srv.writeStall()
			e.Dur("write_timeout", stall).Msg("write timeout: the peer read none of the echo for " + FormatDuration(stall))
		}
	case CloseReset:
		level := zerolog.WarnLevel
		if c.balancerCheck() || !c.heard {
			level = zerolog.DebugLevel
		}
		if e := c.log(level); e != nil {
			e.Err(err).Msg(err.Error())
		}
	case CloseDenied, CloseLimit: // after a PROXY header: logged by readmit
	case CloseProxy:
		var pe *proxyError
		if errors.As(err, &pe) {
			c.proxyRefused(pe)
		}
	default:
		if e := c.log(zerolog.WarnLevel); e != nil && !errors.Is(err, errFault) {
			e.Err(err).Msg(err.Error())
		}
	}
	if e := c.log(zerolog.InfoLevel); e != nil {
		e.Str("reason", reason.String()).Msg("closing")
	}
}

// echoLost logs that Shutdown's deadline closes c with echo it owed still
// unwritten: the peer did not read it within drainLinger.
func (c *conn) echoLost() {
	if e := c.log(zerolog.WarnLevel); e != nil {
		e.Msg("shutdown: the rest of the echo was not written: the peer did not read it within " + FormatDuration(drainLinger))
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

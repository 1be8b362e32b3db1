package echo

import (
	"net"
	"time"
)

// An Observer is told what a Server's listeners and connections do: it is
// where metrics attach (echoctl's internal/metrics implements it for
// Prometheus), as http.Server's ConnState hook is for net/http. Set it in
// Server.Observer; a nil Observer costs nothing.
//
// Events are labelled by listener, the listening address as
// net.Listener.Addr().String() gives it ("127.0.0.1:10000", "[::1]:10000").
// The methods are called from many goroutines at once and must be safe
// for concurrent use; they run on the accept loop, on a connection's
// goroutine or on an event loop that serves many connections (Linux TCP
// and Unix sockets), so they must not block.
type Observer interface {
	// Listening is called with accepting true when Serve starts accepting
	// on a listener, and with false when it stops: on Shutdown or Close,
	// or when the listener fails.
	Listening(listener string, accepting bool)

	// AcceptError is called for each failed Accept that Serve retries
	// after a pause, such as running out of file descriptors (EMFILE).
	AcceptError(listener string, err error)

	// ConnAccepted is called for every connection a listener accepts,
	// before the access list and the connection limits are checked, so
	// that refused connections are counted too. The ConnObserver it
	// returns receives that connection's events; nil ignores them.
	ConnAccepted(listener string, peer net.Addr) ConnObserver
}

// A PacketObserver is an Observer that also counts datagrams. ServePacket
// calls PacketListener once for its socket and reports every datagram to
// the ConnObserver returned: Received when it arrives, Sent when its echo
// has gone back (n 0 and a negative latency if that failed); never Closed.
type PacketObserver interface {
	Observer
	PacketListener(listener string) ConnObserver
}

// A PacketDropObserver is a ConnObserver that also counts the datagrams
// ServePacket drops unanswered. If the ConnObserver that
// PacketObserver.PacketListener returns implements it, Dropped is called
// once for each dropped datagram, with the reason, on the hot path (keep
// it to a few atomic operations). A dropped datagram is reported neither
// to Received nor to Sent.
type PacketDropObserver interface {
	ConnObserver
	Dropped(reason DropReason)
}

// A FaultObserver is a ConnObserver that also counts the faults injected
// (Server.Faults). If the ConnObserver that Observer.ConnAccepted returns
// implements it, Fault is called the first time each kind of fault acts
// on that connection.
type FaultObserver interface {
	ConnObserver
	Fault(kind FaultKind)
}

// A ConnObserver receives the events of one connection, in order. The
// per-chunk methods, Received and Sent, are on the echo's hot path: keep
// them to a few atomic operations.
type ConnObserver interface {
	// Received is called after each read with the number of bytes read.
	Received(n int)

	// Sent is called after each chunk is written back, with the number of
	// bytes written and the echo latency: the time from the end of the
	// read to the end of the write. If the write failed partway, n is
	// what was written and latency is negative.
	Sent(n int, latency time.Duration)

	// Closed is called once, last, when the connection has been closed,
	// with the reason.
	Closed(reason CloseReason)
}

// A CloseReason says why a server closed a connection.
type CloseReason uint8

// The reasons a connection closes. Their String forms are the values of
// the reason label of echoctl_connections_closed_total.
const (
	// CloseEOF: the peer half-closed (or closed) and everything it sent
	// was echoed back.
	CloseEOF CloseReason = iota
	// CloseIdle: no byte moved either way for Server.IdleTimeout.
	CloseIdle
	// CloseWriteTimeout: the peer read none of the echo for
	// Server.WriteTimeout.
	CloseWriteTimeout
	// CloseReset: the peer reset the connection (ECONNRESET, EPIPE).
	CloseReset
	// CloseLimit: refused at accept because Server.MaxConns or
	// Server.MaxConnsPerIP was reached.
	CloseLimit
	// CloseDenied: refused at accept by Server.Allow or Server.Deny.
	CloseDenied
	// CloseShutdown: closed by Shutdown (when its context ended) or Close.
	CloseShutdown
	// CloseError: any other error.
	CloseError
	// CloseProxy: refused by a listener that requires a PROXY protocol
	// header (ListenerOptions.ProxyProtocol): the header was missing,
	// malformed, unsupported or late, or the peer is not in
	// ProxyTrusted. Its ProxyResult says which.
	CloseProxy
	// CloseFault: closed or reset by a fault (Server.Faults: close-after,
	// reset-after, refuse).
	CloseFault
)

var closeReasonNames = [...]string{
	CloseEOF:          "eof",
	CloseIdle:         "idle",
	CloseWriteTimeout: "write-timeout",
	CloseReset:        "reset",
	CloseLimit:        "limit",
	CloseDenied:       "denied",
	CloseShutdown:     "shutdown",
	CloseError:        "error",
	CloseProxy:        "proxy",
	CloseFault:        "fault",
}

// String returns the reason's label value: "eof", "idle", "write-timeout",
// "reset", "limit", "denied", "shutdown", "error", "proxy" or "fault".
func (r CloseReason) String() string {
	if int(r) < len(closeReasonNames) {
		return closeReasonNames[r]
	}
	return "error"
}

// CloseReasons returns every CloseReason, in the order of their values.
func CloseReasons() []CloseReason {
	rs := make([]CloseReason, len(closeReasonNames))
	for i := range rs {
		rs[i] = CloseReason(i)
	}
	return rs
}

// A DropReason says why ServePacket dropped a datagram without answering
// it (docs/udp.md).
type DropReason uint8

// The reasons a datagram is dropped, in the order ServePacket checks them.
// Their String forms are the values of the reason label of
// echoctl_udp_dropped_total.
const (
	// DropDenied: Server.Allow or Server.Deny refuses the sender.
	DropDenied DropReason = iota
	// DropPortZero: the source port is 0, which cannot be answered.
	DropPortZero
	// DropOwnAddress: the datagram comes from one of the server's own UDP
	// sockets (its source port is one the server listens on and its source
	// address is loopback or the host's own): the answer would come back
	// as a new datagram, for ever.
	DropOwnAddress
	// DropReflectorPort: the source port is that of a well-known UDP
	// service that answers what it receives (echo, chargen, DNS, NTP, ...):
	// the two would answer each other for ever (CERT CA-1996-01).
	DropReflectorPort
	// DropLowPort: the source port is below 1024, a system service's, and
	// Server.UDPAllowLowPorts is not set.
	DropLowPort
	// DropRateLimit: the sender's address has used up its
	// Server.UDPRatePerSource.
	DropRateLimit
	// DropRateTableFull: the per-source rate limiter already tracks as many
	// active sources as it holds; a new source is answered once some have
	// gone quiet.
	DropRateTableFull
	// DropFaultQueue: a fault (Faults.Delay, Jitter or Reorder) would
	// hold the answer back, but the listener already holds as many
	// answers as it may (MaxHeldAnswers).
	DropFaultQueue
)

var dropReasonNames = [...]string{
	DropDenied:        "denied",
	DropPortZero:      "port-zero",
	DropOwnAddress:    "own-address",
	DropReflectorPort: "reflector-port",
	DropLowPort:       "low-port",
	DropRateLimit:     "rate-limit",
	DropRateTableFull: "rate-table-full",
	DropFaultQueue:    "fault-queue-full",
}

// String returns the reason's label value: "denied", "port-zero",
// "own-address", "reflector-port", "low-port", "rate-limit",
// "rate-table-full" or "fault-queue-full".
func (r DropReason) String() string {
	if int(r) < len(dropReasonNames) {
		return dropReasonNames[r]
	}
	return "unknown"
}

// DropReasons returns every DropReason, in the order of their values.
func DropReasons() []DropReason {
	rs := make([]DropReason, len(dropReasonNames))
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// A ProxyObserver is a ConnObserver that also counts PROXY protocol
// headers (ListenerOptions.ProxyProtocol). If the ConnObserver that
// Observer.ConnAccepted returns implements it, ProxyHeader is called once
// for each connection of a PROXY listener that ends its header (or is
// refused before it): with the header's version (1 or 2; 0 when none was
// recognised) and the result. It runs once a connection: it may take a
// lock.
type ProxyObserver interface {
	ConnObserver
	ProxyHeader(version int, result ProxyResult)
}

// A ProxyResult says how a PROXY protocol header ended.
type ProxyResult uint8

// The results of a PROXY protocol header. Their String forms are the
// values of the result label of echoctl_proxy_headers_total.
const (
	// ProxyAccepted: a PROXY header named the original client, which the
	// connection is then served as.
	ProxyAccepted ProxyResult = iota
	// ProxyLocal: a LOCAL (v2) or UNKNOWN (v1) header, as balancers'
	// health checks send, or a v2 PROXY header of the UNSPEC family:
	// served with the socket's own addresses.
	ProxyLocal
	// ProxyAbsent: refused, the connection starts with bytes that are
	// not a PROXY header (a client that connects directly).
	ProxyAbsent
	// ProxyMalformed: refused, the header is malformed: too long, a v1
	// line ending in a bare LF, or not as the specification says.
	ProxyMalformed
	// ProxyUnsupported: refused, the header's command or address family
	// is unknown.
	ProxyUnsupported
	// ProxyTimeout: refused, the header did not come whole within
	// ListenerOptions.ProxyTimeout.
	ProxyTimeout
	// ProxyUntrusted: refused at accept, the peer is not in
	// ListenerOptions.ProxyTrusted.
	ProxyUntrusted
)

var proxyResultNames = [...]string{
	ProxyAccepted:    "proxy",
	ProxyLocal:       "local",
	ProxyAbsent:      "absent",
	ProxyMalformed:   "malformed",
	ProxyUnsupported: "unsupported",
	ProxyTimeout:     "timeout",
	ProxyUntrusted:   "untrusted",
}

// String returns the result's label value: "proxy", "local", "absent",
// "malformed", "unsupported", "timeout" or "untrusted".
func (r ProxyResult) String() string {
	if int(r) < len(proxyResultNames) {
		return proxyResultNames[r]
	}
	return "unknown"
}

// ProxyResults returns every ProxyResult, in the order of their values.
func ProxyResults() []ProxyResult {
	rs := make([]ProxyResult, len(proxyResultNames))
	for i := range rs {
		rs[i] = ProxyResult(i)
	}
	return rs
}

// received notes that the peer has sent bytes to echo (heard), reports n
// bytes read to the observer and returns when they were read, to measure
// the echo latency; without an observer it returns the zero time.
func (c *conn) received(n int) time.Time {
	c.heard = true
	if c.obs == nil {
		return time.Time{}
	}
	c.obs.Received(n)
	return time.Now()
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

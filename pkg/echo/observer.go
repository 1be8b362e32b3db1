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
// for concurrent use; they run on the accept loop or on a connection's
// goroutine, so they must not block.
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
}

// String returns the reason's label value: "eof", "idle", "write-timeout",
// "reset", "limit", "denied", "shutdown" or "error".
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

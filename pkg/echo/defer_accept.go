package echo

import "syscall"

// deferAcceptSeconds is how long the kernel holds a connection that has
// sent nothing before handing it over anyway: TCP_DEFER_ACCEPT's
// argument, which Linux rounds to one retransmission of its SYN-ACK, about
// a second after the handshake.
const deferAcceptSeconds = 1

// defersAccept reports whether the TCP and TLS listeners that Bind makes
// with opts wait for each connection's first byte before the server takes
// it (TCP_DEFER_ACCEPT, Linux only). It is the one place that decides.
//
// An echo server has nothing to do on a connection until its peer sends,
// so taking it at its first byte (its FIN, or about a second after its
// handshake if it sends nothing) saves a wake-up, and the read that comes
// finds the client's first writes together: a short-lived connection
// costs the server about a quarter less CPU (docs/benchmarks.md), with no
// added latency. It is on unless a setting needs the connection as soon
// as its handshake completes, to act on it or to show it before the
// client sends:
//
//	setting                                   why the connection is needed at once
//	Greeting                                  the server speaks first
//	Faults, ListenerOptions.Faults            refuse, and close, reset or stall after a time
//	IdleTimeout                               closes a silent connection on time
//	Allow, Deny, ListenerOptions.ProxyTrusted refuse a peer at once
//	MaxConns, MaxConnsPerIP                   refuse a connection at once
//	data logged (Logger at debug level)       the transcript shows every connection
//	Observer                                  counts every connection (metrics)
//	ListenerOptions.DisableDeferAccept        the user asked
//
// With it on, a peer that resets before its first byte (a TCP health
// check) is never seen, and the PROXY header's and the TLS handshake's
// timeouts run from when the connection is taken. Listeners given to
// Serve, Unix sockets and UDP are never changed.
func (s *Server) defersAccept(opts ListenerOptions) bool {
	return deferAcceptAvailable && !opts.DisableDeferAccept &&
		s.Greeting == "" && s.Faults == nil && len(opts.Faults) == 0 &&
		s.IdleTimeout <= 0 &&
		len(s.Allow) == 0 && len(s.Deny) == 0 && len(opts.ProxyTrusted) == 0 &&
		s.MaxConns <= 0 && s.MaxConnsPerIP <= 0 &&
		!s.logsData() && s.Observer == nil
}

// deferAcceptControl returns control (a net.ListenConfig's Control, nil
// for none) followed by setting TCP_DEFER_ACCEPT on the socket.
func deferAcceptControl(control func(network, address string, c syscall.RawConn) error) func(string, string, syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		if control != nil {
			if err := control(network, address, c); err != nil {
				return err
			}
		}
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setDeferAccept(fd) }); err != nil {
			return err
		}
		return serr
	}
}

package echo

import (
	"net"
	"syscall"
)

// deferAcceptSeconds is how long the kernel holds a connection that has
// sent nothing before handing it over anyway: TCP_DEFER_ACCEPT's
// argument, which Linux rounds to one retransmission of its SYN-ACK, about
// a second after the handshake.
const deferAcceptSeconds = 1

// defersAccept reports whether a TCP or TLS listener that Bind made,
// served with opts and with the faults f in force (nil: none), waits for
// each connection's first byte before the server takes it
// (TCP_DEFER_ACCEPT, Linux only). It is the one place that decides.
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
//	Faults.Refuse, a Time in CloseAfter,      they act from the opening
//	  ResetAfter or StallAfter
//	IdleTimeout                               closes a silent connection on time
//	Allow, Deny, ProxyTrusted (PROXY on)      refuse a peer at once
//	MaxConns, MaxConnsPerIP                   refuse a connection at once
//	data logged (Logger at debug level)       the transcript shows every connection
//	Observer                                  counts every connection (metrics)
//	ListenerOptions.DisableDeferAccept        the user asked
//
// It is applied when ServeBound (or ListenAndServe) serves the socket, and
// the faults are the listener's as SetFaults changes them: the socket
// follows (deferSocket). With it on, a peer that resets before its first
// byte is never seen, a connection the kernel still holds when the
// listener closes is reset as one waiting to be accepted is, and the
// PROXY header's and the TLS handshake's timeouts run from when the
// connection is taken. Listeners given to Serve (even ones Bind made),
// Unix sockets and UDP are never changed.
func (s *Server) defersAccept(opts ListenerOptions, f *Faults) bool {
	return deferAcceptAvailable && !opts.DisableDeferAccept &&
		s.Greeting == "" && !f.actsAtOpen() &&
		s.IdleTimeout <= 0 &&
		len(s.Allow) == 0 && len(s.Deny) == 0 && !(opts.ProxyProtocol && len(opts.ProxyTrusted) > 0) &&
		s.MaxConns <= 0 && s.MaxConnsPerIP <= 0 &&
		!s.logsData() && s.Observer == nil
}

// actsAtOpen reports whether f has a fault that may act on a stream
// connection before its first byte: one that refuses it, or closes,
// resets or stalls it a time after it opened.
func (f *Faults) actsAtOpen() bool {
	return f != nil && (f.Refuse > 0 || f.CloseAfter.Time > 0 || f.ResetAfter.Time > 0 || f.StallAfter.Time > 0)
}

// deferSocket is the TCP socket under a listener that Bind made, whose
// TCP_DEFER_ACCEPT follows defersAccept for its listener while it is
// served: set when Serve starts, and again at each SetFaults.
type deferSocket struct {
	rc    syscall.RawConn
	lconf *listenerConf
	on    bool // what the socket has now; guarded by Server.mu
}

// watchDeferAccept sets the socket under ln, which Bind made (nil: none,
// a listener given to Serve), as defersAccept says for lconf, and keeps
// it so for SetFaults until the returned function is called.
func (s *Server) watchDeferAccept(sock *net.TCPListener, lconf *listenerConf) (stop func()) {
	if sock == nil || !deferAcceptAvailable {
		return func() {}
	}
	rc, err := sock.SyscallConn()
	if err != nil {
		return func() {}
	}
	ds := &deferSocket{rc: rc, lconf: lconf}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyDeferAccept(ds)
	if s.deferSockets == nil {
		s.deferSockets = make(map[*deferSocket]struct{})
	}
	s.deferSockets[ds] = struct{}{}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.deferSockets, ds)
	}
}

// applyDeferAccept sets ds's socket as defersAccept says for the faults
// its listener has now. A socket that refuses the option is left as it
// is, with a warning: taking connections at once is only slower. s.mu is
// held.
func (s *Server) applyDeferAccept(ds *deferSocket) {
	var f *Faults
	if st := ds.lconf.faults; st != nil {
		f = &st.cur.Load().f
	}
	want := s.defersAccept(ds.lconf.opts, f)
	if want == ds.on {
		return
	}
	var serr error
	if err := ds.rc.Control(func(fd uintptr) { serr = setDeferAccept(fd, want) }); err != nil {
		return // closed: nothing to take connections for
	}
	if serr != nil {
		s.Logger.Warn().Str("logger", "main").Str("listener", ds.lconf.name).Err(serr).
			Msg("cannot change when the listener takes connections: " + serr.Error())
		return
	}
	ds.on = want
}

// reapplyDeferAccept sets every served socket Bind made as defersAccept
// says for its faults now (SetFaults). s.mu is held.
func (s *Server) reapplyDeferAccept() {
	for ds := range s.deferSockets {
		s.applyDeferAccept(ds)
	}
}

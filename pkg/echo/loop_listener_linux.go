package echo

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/echoctl/echoctl/pkg/echo/internal/netpoll"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Listening sockets served by the event loops (loop_linux.go): the loops
// accept on a duplicate of a TCP or Unix listener's socket, and pause
// after a transient accept error as Serve does.

// loopAcceptTries bounds the accept4 calls of one event (accept) when
// connections are refused or abort before they are accepted.
const loopAcceptTries = 16

// listenerCheckInterval is how often Serve looks whether a listener served
// by the event loops was closed by its owner rather than through Close.
const listenerCheckInterval = 250 * time.Millisecond

// loopListener is a TCP or Unix listener whose connections the event loops
// accept themselves, on a duplicate of its socket in their epoll sets: a
// listener's own RawConn cannot wait for readability. The runtime's poller
// keeps its registration of the original descriptor, which the package
// cannot remove while the listener's owner holds it, so it is told of each
// new connection too. Under load no thread waits in it and this costs
// nothing measurable; at a few hundred connections a second an idle
// runtime thread wakes for each (closing the original, which Serve's
// contract with the owner forbids, saved 6 to 10% of the server's CPU a
// connection at 200 a second). Close closes the listener (a unixListener
// removes its socket file if it is still its own) and ends Serve.
type loopListener struct {
	net.Listener
	unix      bool            // a Unix socket: its peers have no address
	lrc       syscall.RawConn // the listener's, to see whether it is still open
	fd        int             // the duplicate, non-blocking
	closeOnce sync.Once
	closed    chan struct{}
	errc      chan error // a loop's accept error that ends Serve (buffered)

	// Who closes the duplicate: serveLoops once it has claimed it (the
	// loops use its number until they let it go), else Close, for a
	// listener closed before it was served (Serve after Shutdown).
	dupMu      sync.Mutex
	dupClaimed bool
	dupClosed  bool
	released   chan struct{} // closed when the duplicate is
}

// newLoopListener duplicates ln's socket and, for TCP, sets on it the
// options that accepted sockets inherit from it (Linux copies them), as
// net sets them on each connection it accepts: no Nagle delay, and
// keep-alive as lc says.
func newLoopListener(ln net.Listener, lc net.ListenConfig) (*loopListener, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("listener %T has no descriptor", ln)
	}
	lrc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	_, isTCP := ln.(*net.TCPListener)
	dup, derr := -1, error(nil)
	if err := lrc.Control(func(fd uintptr) {
		if isTCP {
			if derr = setInheritedOptions(int(fd), lc); derr != nil {
				return
			}
		}
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if derr != nil {
			derr = os.NewSyscallError("fcntl", derr)
		}
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	return &loopListener{Listener: ln, unix: !isTCP, lrc: lrc, fd: dup, closed: make(chan struct{}), errc: make(chan error, 1), released: make(chan struct{})}, nil
}

// Keep-alive defaults, as net's for accepted connections.
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// setInheritedOptions sets TCP_NODELAY and the keep-alive options of lc
// (KeepAliveConfig, else KeepAlive; negative KeepAlive turns it off) on a
// listening socket.
func setInheritedOptions(fd int, lc net.ListenConfig) error {
	type opt struct{ level, name, value int }
	opts := []opt{{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1}}
	kc := lc.KeepAliveConfig
	if kc.Enable || lc.KeepAlive >= 0 {
		idle := kc.Idle
		if idle == 0 {
			idle = lc.KeepAlive
		}
		if idle <= 0 {
			idle = defaultKeepAliveIdle
		}
		interval := kc.Interval
		if interval <= 0 {
			interval = defaultKeepAliveInterval
		}
		count := kc.Count
		if count <= 0 {
			count = defaultKeepAliveCount
		}
		opts = append(opts,
			opt{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			opt{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, max(int(idle/time.Second), 1)},
			opt{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, max(int(interval/time.Second), 1)},
			opt{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, count})
	} else {
		opts = append(opts, opt{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// Close closes the listener and ends Serve, which takes it out of the
// loops and closes the duplicate; if Serve never served it, Close closes
// the duplicate itself.
func (ll *loopListener) Close() error {
	ll.closeOnce.Do(func() { close(ll.closed) })
	ll.dupMu.Lock()
	if !ll.dupClaimed {
		ll.closeDupLocked()
	}
	ll.dupMu.Unlock()
	return ll.Listener.Close()
}

// claimDup hands the duplicate to serveLoops, which must then closeDup it;
// it is false if Close has closed it already.
func (ll *loopListener) claimDup() bool {
	ll.dupMu.Lock()
	defer ll.dupMu.Unlock()
	if ll.dupClosed {
		return false
	}
	ll.dupClaimed = true
	return true
}

// closeDup closes the duplicate once.
func (ll *loopListener) closeDup() {
	ll.dupMu.Lock()
	defer ll.dupMu.Unlock()
	ll.closeDupLocked()
}

func (ll *loopListener) closeDupLocked() {
	if !ll.dupClosed {
		ll.dupClosed = true
		unix.Close(ll.fd)
		close(ll.released)
	}
}

// waitReleased waits until the duplicate is closed, after Close: until
// then the port is still bound and the loops may accept on it. Serve lets
// it go at once, unless the caller is a loop (Close in an observer's
// callback), which no Server method supports.
func (ll *loopListener) waitReleased() { <-ll.released }

// serveLoops has the event loops accept and serve ll's connections until
// ll is closed (by Close or Shutdown: ErrServerClosed; by its owner: an
// error) or a loop cannot accept on it.
func (s *Server) serveLoops(ll *loopListener, lconf *listenerConf) error {
	lname := lconf.name
	end := func(err error) error {
		if s.shuttingDown() {
			return ErrServerClosed
		}
		return fmt.Errorf("echo: accept on %s: %w", lname, err)
	}
	if !ll.claimDup() {
		return end(net.ErrClosed)
	}
	defer ll.closeDup()
	if err := s.loops.listen(s, ll, lconf); err != nil {
		return end(err)
	}
	defer s.loops.unlisten(ll)
	t := time.NewTicker(listenerCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ll.closed:
			return end(net.ErrClosed)
		case err := <-ll.errc:
			return end(err)
		case <-t.C:
			if err := ll.lrc.Control(func(uintptr) {}); err != nil {
				return end(err)
			}
		}
	}
}

// loopAccept is a loop's state for one listening socket.
type loopAccept struct {
	ll     *loopListener
	lconf  *listenerConf // its settings, which its connections point to
	lname  string
	local  net.Addr
	unix   bool // a Unix socket: its peers have no address
	active bool // registered in the epoll set

	// After a transient accept error (out of descriptors, say) the loop
	// stops accepting on it until pausedUntil, as Serve pauses.
	pausedUntil time.Time
	backoff     acceptBackoff
}

// pause takes la's socket out of the epoll set until until (never again if
// until is zero).
func (l *loop) pause(la *loopAccept, until time.Time) {
	if la.active {
		l.poll.Del(la.ll.fd)
		la.active = false
	}
	l.setPause(la, until)
}

// setPause sets when la resumes (zero: never, or not paused), keeping
// count of the listeners that wait to resume, so that a loop with none
// need not look at the clock.
func (l *loop) setPause(la *loopAccept, until time.Time) {
	switch was := !la.pausedUntil.IsZero(); {
	case was && until.IsZero():
		l.paused--
	case !was && !until.IsZero():
		l.paused++
	}
	la.pausedUntil = until
}

// resume puts la's socket in the epoll set. EPOLLEXCLUSIVE wakes one loop,
// not all, for a new connection.
func (l *loop) resume(la *loopAccept) error {
	l.setPause(la, time.Time{})
	if err := l.poll.Add(la.ll.fd, unix.EPOLLIN|unix.EPOLLEXCLUSIVE, netpoll.KindListener); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	la.active = true
	return nil
}

// resumeListeners resumes the listeners whose pause has passed, and
// returns how long until the next one does (-1: none is paused).
func (l *loop) resumeListeners() time.Duration {
	next := time.Duration(-1)
	now := time.Now()
	for _, la := range l.listeners {
		if la.active || la.pausedUntil.IsZero() {
			continue
		}
		if wait := la.pausedUntil.Sub(now); wait > 0 {
			if next < 0 || wait < next {
				next = wait
			}
			continue
		}
		if err := l.resume(la); err != nil {
			l.pause(la, time.Time{})
			select {
			case la.ll.errc <- err:
			default:
			}
		}
	}
	return next
}

// accept accepts one connection waiting on la's socket, and serves it.
// One per event, as gnet does: the socket is in the epoll set
// level-triggered, so the loop sees it again while connections wait,
// between its other events, and no accept4 finds the queue empty, which
// takes the listener's lock against the handshakes the kernel is
// completing for it. Accepting until EAGAIN cost 6 to 10% more server CPU
// a connection in connrate. A connection refused or aborted before it
// was accepted does not count as the one.
func (l *loop) accept(la *loopAccept) {
	s := l.srv
	for range loopAcceptTries {
		fd, ap, err := netpoll.Accept4(la.ll.fd)
		switch err {
		case nil:
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			// As net.Listener's Accept says it: "accept tcp ADDR: accept4:
			// ...", naming the listener in the text log too.
			var serr error = &net.OpError{Op: "accept", Net: la.local.Network(), Addr: la.local, Err: os.NewSyscallError("accept4", err)}
			if !isTransientAcceptError(serr) {
				l.pause(la, time.Time{})
				select {
				case la.ll.errc <- serr:
				default:
				}
				return
			}
			l.pause(la, time.Now().Add(la.backoff.failed(s, la.lname, serr)))
			return
		}
		la.backoff.accepted(s, la.lname)
		lc := &loopConn{fd: int32(fd), loop: l.index}
		peer := peerAddr{unix: la.unix, ap: ap}
		serve, ok := s.accepted(&lc.conn, lc, la.local, peer, la.lconf, true)
		if !serve {
			netpoll.Close(fd)
			if !ok {
				return // shutting down
			}
			continue // refused
		}
		if err := l.add(lc); err != nil {
			lc.log(zerolog.WarnLevel).Err(err).Msg("cannot serve the connection: " + err.Error())
			unix.Close(fd)
			lc.finish(CloseError)
		} else if la.lconf.stages != nil {
			l.opened(lc)
		}
		return
	}
}

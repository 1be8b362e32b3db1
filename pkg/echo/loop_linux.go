package echo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
)

// Event loops.
//
// A goroutine per connection pays the runtime scheduler for every message
// (the goroutine parks in the poller after a read that finds the socket
// empty, and is woken again) and, per connection, the goroutine and the
// poller registration. On Linux, a Server whose connections need nothing
// of that model serves plain TCP the way gnet does instead: one event loop
// per CPU waits on epoll for a duplicate of the listening socket and for
// the sockets it accepts from it (accept4: raw sockets, never registered
// in the runtime's poller), reads into one buffer of its own, and writes
// the bytes back at once. A connection whose peer does not read keeps what is left to write
// in a pooled buffer and is not read from until that is written (epoll
// asks for writability instead of readability), which is the seed's
// drain(): the same back-pressure as the goroutine's blocking write.
//
// The loops serve connections accepted on a *net.TCPListener when no data
// is logged (the debug transcript wants the seed's BufferSize reads, which
// the goroutine loop keeps) and no IdleTimeout or WriteTimeout is set
// (their deadlines belong to the goroutine model). Everything else —
// access lists, connection limits, the observer, logging of accepts and
// closes, graceful and forced shutdown — behaves as with goroutines.

// loopEvents is how many epoll events a loop takes at once.
const loopEvents = 256

// loopStopPoll is how often a loop looks at the deadlines of connections
// that Shutdown stopped.
const loopStopPoll = 50 * time.Millisecond

// errLoopOwned is what the I/O methods of a loop connection's net.Conn
// return: its socket belongs to the loop.
var errLoopOwned = errors.New("echo: connection served by an event loop")

// fdConn is the net.Conn of a connection served by an event loop: a raw
// non-blocking socket. Only its addresses and, before the loop takes it,
// Close are used; reads, writes and deadlines are the loop's.
type fdConn struct {
	fd     int
	la     *loopAccept    // the listener it came from, for LocalAddr
	remote netip.AddrPort // unboxed: a *net.TCPAddr would cost an idle connection 64 bytes
}

func (f *fdConn) Read([]byte) (int, error)         { return 0, errLoopOwned }
func (f *fdConn) Write([]byte) (int, error)        { return 0, errLoopOwned }
func (f *fdConn) Close() error                     { return os.NewSyscallError("close", syscall.Close(f.fd)) }
func (f *fdConn) LocalAddr() net.Addr              { return f.la.local }
func (f *fdConn) RemoteAddr() net.Addr             { return net.TCPAddrFromAddrPort(f.remote) }
func (f *fdConn) remoteAddrPort() netip.AddrPort   { return f.remote }
func (f *fdConn) SetDeadline(time.Time) error      { return errLoopOwned }
func (f *fdConn) SetReadDeadline(time.Time) error  { return errLoopOwned }
func (f *fdConn) SetWriteDeadline(time.Time) error { return errLoopOwned }

// loopOwned reports whether c is served by an event loop, which alone may
// close its socket.
func (c *conn) loopOwned() bool {
	_, ok := c.rwc.(*fdConn)
	return ok
}

// loops is a Server's set of event loops; its zero value is ready. They
// start with the first connection and stop with close.
type loops struct {
	mu      sync.Mutex
	started bool
	closed  bool
	all     []*loop
	wg      sync.WaitGroup
}

// loopsFor returns, when event loops are to serve ln, the listener that
// Serve tracks and closes in place of ln and the function that serves it;
// ok is false when ln is to be served with goroutines.
func (s *Server) loopsFor(ln net.Listener) (tracked net.Listener, serve func(lname string) error, ok bool) {
	tl, isTCP := ln.(*net.TCPListener)
	if !isTCP || s.noLoops || s.IdleTimeout > 0 || s.WriteTimeout > 0 || s.logsData() {
		return nil, nil, false
	}
	ll, err := newLoopListener(tl, s.ListenConfig)
	if err != nil {
		return nil, nil, false
	}
	return ll, func(lname string) error { return s.serveLoops(ll, lname) }, true
}

// listenerCheckInterval is how often Serve looks whether a listener served
// by the event loops was closed by its owner rather than through Close.
const listenerCheckInterval = 250 * time.Millisecond

// loopAcceptBatch is the most connections a loop accepts for one event,
// so that a flood of new connections does not starve the open ones.
const loopAcceptBatch = 64

// loopListener is a TCP listener whose connections the event loops accept
// themselves, on a duplicate of its socket in their epoll sets: a
// listener's own RawConn cannot wait for readability, and the runtime's
// poller need not wake for it. Close closes the listener and ends Serve.
type loopListener struct {
	*net.TCPListener
	lrc       syscall.RawConn // the listener's, to see whether it is still open
	fd        int             // the duplicate, non-blocking
	closeOnce sync.Once
	closed    chan struct{}
	errc      chan error // a loop's accept error that ends Serve (buffered)
}

// newLoopListener duplicates tl's socket, and sets on it the options that
// accepted sockets inherit from it (Linux copies them), as net sets them on
// each connection it accepts: no Nagle delay, and keep-alive as lc says.
func newLoopListener(tl *net.TCPListener, lc net.ListenConfig) (*loopListener, error) {
	lrc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup, derr := -1, error(nil)
	if err := lrc.Control(func(fd uintptr) {
		if derr = setInheritedOptions(int(fd), lc); derr != nil {
			return
		}
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = os.NewSyscallError("fcntl", errno)
			return
		}
		dup = int(r)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	return &loopListener{TCPListener: tl, lrc: lrc, fd: dup, closed: make(chan struct{}), errc: make(chan error, 1)}, nil
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
	opts := []opt{{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1}}
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
			opt{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
			opt{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, max(int(idle/time.Second), 1)},
			opt{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, max(int(interval/time.Second), 1)},
			opt{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, count})
	} else {
		opts = append(opts, opt{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 0})
	}
	for _, o := range opts {
		if err := syscall.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// Close closes the listener and ends Serve, which takes it out of the
// loops and closes the duplicate.
func (ll *loopListener) Close() error {
	ll.closeOnce.Do(func() { close(ll.closed) })
	return ll.TCPListener.Close()
}

// serveLoops has the event loops accept and serve ll's connections until
// ll is closed (by Close or Shutdown: ErrServerClosed; by its owner: an
// error) or a loop cannot accept on it.
func (s *Server) serveLoops(ll *loopListener, lname string) error {
	defer syscall.Close(ll.fd)
	end := func(err error) error {
		if s.shuttingDown() {
			return ErrServerClosed
		}
		return fmt.Errorf("echo: accept on %s: %w", lname, err)
	}
	if err := s.loops.listen(s, ll, lname); err != nil {
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

// sockaddrAddrPort is the address of an accepted socket's peer, as net
// would make its *net.TCPAddr (an IPv4 peer of an IPv6 socket stays
// IPv4-mapped).
func sockaddrAddrPort(sa syscall.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *syscall.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				ip = ip.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(ip, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// listen starts the loops on first use and registers ll with every one.
func (ls *loops) listen(s *Server, ll *loopListener, lname string) error {
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return ErrServerClosed
	}
	if !ls.started {
		ls.started = true
		for range runtime.GOMAXPROCS(0) {
			l, err := newLoop(s)
			if err != nil {
				ls.mu.Unlock()
				return err
			}
			ls.all = append(ls.all, l)
			ls.wg.Add(1)
			go func() {
				defer ls.wg.Done()
				l.run()
			}()
		}
	}
	all := ls.all
	ls.mu.Unlock()
	var err error
	for _, l := range all {
		l.do(func() {
			la := &loopAccept{ll: ll, lname: lname, local: ll.Addr()}
			l.listeners[int32(ll.fd)] = la
			if rerr := l.resume(la); rerr != nil && err == nil {
				err = rerr
			}
		})
	}
	if err != nil {
		ls.unlisten(ll)
	}
	return err
}

// unlisten takes ll out of every loop.
func (ls *loops) unlisten(ll *loopListener) {
	ls.mu.Lock()
	all := ls.all
	ls.mu.Unlock()
	for _, l := range all {
		l.do(func() {
			if la := l.listeners[int32(ll.fd)]; la != nil {
				l.pause(la, time.Time{})
				delete(l.listeners, int32(ll.fd))
			}
		})
	}
}

// stopAll makes every loop stop its connections as Shutdown does when its
// context ends; closeAll closes them at once, as Close does.
func (ls *loops) stopAll()  { ls.each((*loop).stopConns) }
func (ls *loops) closeAll() { ls.each((*loop).closeConns) }

func (ls *loops) each(f func(*loop)) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.all {
		f(l)
	}
}

// close stops the loops once no connection is left; calls after the first
// do nothing.
func (ls *loops) close() {
	ls.mu.Lock()
	all := ls.all
	if ls.closed {
		all = nil
	}
	ls.closed = true
	ls.mu.Unlock()
	for _, l := range all {
		l.exit()
	}
	ls.wg.Wait()
}

// loop is one event loop: an epoll instance, the connections registered in
// it, and a read buffer.
type loop struct {
	srv   *Server
	epfd  int
	wake  int // an eventfd that interrupts epoll_wait for a request
	buf   []byte
	epoch time.Time // the zero of the loop's clock (now)
	// busyPoll is Server.BusyPoll in nanoseconds: how long after finding
	// events the loop keeps looking for more before it sleeps.
	busyPoll int64
	done     chan struct{} // closed when run returns

	// listeners are the listening sockets this loop accepts on (the
	// loop's own: no lock).
	listeners map[int32]*loopAccept

	mu    sync.Mutex
	conns map[int32]*loopConn
	ops   []func() // work for the loop from other goroutines (do)
	// Requests from other goroutines, taken up by the loop when woken.
	// They stay set: a connection added after one was made is treated
	// the same.
	stopReq, closeReq, exitReq bool
}

// loopAccept is a loop's state for one listening socket.
type loopAccept struct {
	ll     *loopListener
	lname  string
	local  net.Addr
	active bool // registered in the epoll set

	// After a transient accept error (out of descriptors, say) the loop
	// stops accepting on it until pausedUntil, as Serve pauses.
	pausedUntil time.Time
	delay       time.Duration
	failures    int       // accept errors since the last success
	failedAt    time.Time // when the first of them happened
}

// loopConn is what a loop keeps for one connection: 64 bytes, kept small
// for connections that sit idle (times are on the loop's clock, and what
// is left to write is held apart).
type loopConn struct {
	c *conn

	// pending is what the socket did not take of the last read; reads
	// wait until it is written. nil when all is written.
	pending *pendingWrite
	written int   // bytes of the current chunk written so far
	readAt  int64 // when the current chunk was read, for the observer (loop clock)

	stopBy   int64 // when a stopped connection is closed in any case (loop clock)
	fd       int
	final    int  // bytes the peer sent before the deadline, still to echo
	stopped  bool // Shutdown's deadline passed: drain, then close
	draining bool // write side shut: discard what the peer still sends
}

// pendingWrite is a pooled buffer holding the part of a read that a full
// socket did not take.
type pendingWrite struct {
	buf  []byte // fastBufferSize, as the loop's reads
	rest []byte // in buf: what is not yet written
}

var pendingWrites = sync.Pool{New: func() any { return &pendingWrite{buf: make([]byte, fastBufferSize)} }}

// now is the loop's clock: monotonic nanoseconds since the loop started.
func (l *loop) now() int64 { return int64(time.Since(l.epoch)) }

func newLoop(s *Server) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wake, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("eventfd2", errno)
	}
	l := &loop{srv: s, epfd: epfd, wake: int(wake), buf: make([]byte, fastBufferSize), epoch: time.Now(), busyPoll: int64(s.BusyPoll), done: make(chan struct{}),
		listeners: make(map[int32]*loopAccept), conns: make(map[int32]*loopConn)}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.wake)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, l.wake, &ev); err != nil {
		syscall.Close(l.wake)
		syscall.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return l, nil
}

// add registers c's socket with the loop.
func (l *loop) add(c *conn) error {
	fd := c.rwc.(*fdConn).fd
	lc := &loopConn{c: c, fd: fd}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Close may have closed the loop's connections already; Shutdown's
	// stop reaches this one at the loop's next look (loopStopPoll).
	if l.closeReq || l.exitReq {
		return ErrServerClosed
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.conns[int32(fd)] = lc
	return nil
}

// request sets a request flag and wakes the loop.
func (l *loop) request(flag *bool) {
	l.mu.Lock()
	*flag = true
	l.mu.Unlock()
	l.wakeUp()
}

func (l *loop) wakeUp() {
	one := [8]byte{1}
	syscall.Write(l.wake, one[:])
}

// do runs f in the loop and waits for it; it reports false, without
// running f, if the loop has ended.
func (l *loop) do(f func()) bool {
	done := make(chan struct{})
	l.mu.Lock()
	l.ops = append(l.ops, func() {
		f()
		close(done)
	})
	l.mu.Unlock()
	l.wakeUp()
	select {
	case <-done:
		return true
	case <-l.done:
		return false
	}
}

// pause takes la's socket out of the epoll set until until (never again if
// until is zero).
func (l *loop) pause(la *loopAccept, until time.Time) {
	if la.active {
		syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, la.ll.fd, nil)
		la.active = false
	}
	la.pausedUntil = until
}

// resume puts la's socket in the epoll set. EPOLLEXCLUSIVE wakes one loop,
// not all, for a new connection.
func (l *loop) resume(la *loopAccept) error {
	la.pausedUntil = time.Time{}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollExclusive, Fd: int32(la.ll.fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, la.ll.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	la.active = true
	return nil
}

// epollExclusive is EPOLLEXCLUSIVE (Linux 4.5), which package syscall
// does not name.
const epollExclusive = 1 << 28

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

// accept accepts what is waiting on la's socket, and serves it.
func (l *loop) accept(la *loopAccept) {
	s := l.srv
	for range loopAcceptBatch {
		fd, sa, err := syscall.Accept4(la.ll.fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		switch err {
		case nil:
		case syscall.EAGAIN:
			return
		case syscall.EINTR, syscall.ECONNABORTED:
			continue
		default:
			serr := os.NewSyscallError("accept4", err)
			if !isTransientAcceptError(serr) {
				l.pause(la, time.Time{})
				select {
				case la.ll.errc <- serr:
				default:
				}
				return
			}
			if la.failures == 0 {
				la.failedAt = time.Now()
			}
			la.failures++
			la.delay = nextAcceptDelay(la.delay)
			s.acceptFailedReport(la.lname, serr, la.delay)
			l.pause(la, time.Now().Add(la.delay))
			return
		}
		if la.failures > 0 {
			s.acceptRecovered(la.lname, la.failures, la.failedAt)
			la.failures = 0
		}
		la.delay = 0
		c, ok := s.accepted(&fdConn{fd: fd, la: la, remote: sockaddrAddrPort(sa)}, la.lname)
		if !ok {
			return // shutting down
		}
		if c == nil {
			continue // refused
		}
		if err := l.add(c); err != nil {
			c.log(zerolog.WarnLevel).Err(err).Msg("cannot serve the connection: " + err.Error())
			c.rwc.Close()
			c.finish(CloseError)
		}
	}
}

func (l *loop) stopConns()  { l.request(&l.stopReq) }
func (l *loop) closeConns() { l.request(&l.closeReq) }
func (l *loop) exit()       { l.request(&l.exitReq) }

// polling reports whether the loop, having last found events at
// lastFound, is still within Server.BusyPoll of it and keeps looking
// without sleeping.
func (l *loop) polling(lastFound int64) bool {
	return l.busyPoll > 0 && l.now()-lastFound < l.busyPoll
}

// run serves the loop's connections until exit is requested.
func (l *loop) run() {
	defer close(l.done)
	defer syscall.Close(l.epfd)
	defer syscall.Close(l.wake)
	events := make([]syscall.EpollEvent, loopEvents)
	busy := false       // the last wait found events: look again without blocking
	var lastFound int64 // when a wait last found events (loop clock), with busyPoll
	for {
		l.mu.Lock()
		stop, closeAll, exit := l.stopReq, l.closeReq, l.exitReq
		ops := l.ops
		l.ops = nil
		l.mu.Unlock()
		for _, op := range ops {
			op()
		}
		if closeAll || exit {
			l.forEach(func(lc *loopConn) { l.close(lc, CloseShutdown, nil) })
		}
		if exit {
			return
		}
		timeout := -1
		if len(l.listeners) > 0 {
			if wait := l.resumeListeners(); wait >= 0 {
				timeout = int(wait/time.Millisecond) + 1
			}
		}
		if stop {
			now := l.now()
			l.forEach(func(lc *loopConn) {
				l.stop(lc)
				if now > lc.stopBy {
					l.close(lc, CloseShutdown, nil)
				}
			})
			if poll := int(loopStopPoll / time.Millisecond); timeout < 0 || timeout > poll {
				timeout = poll
			}
		}
		var (
			n   int
			err error
		)
		if busy && timeout < 0 {
			n, err = epollPoll(l.epfd, events)
			if n == 0 && l.polling(lastFound) {
				// Look again without sleeping: see Server.BusyPoll.
				runtime.Gosched()
				continue
			}
			if n <= 0 {
				// Nothing ready: let other goroutines run before
				// blocking, which hands this thread's processor on.
				runtime.Gosched()
				busy = false
				continue
			}
		} else {
			n, err = syscall.EpollWait(l.epfd, events, timeout)
		}
		if err != nil && err != syscall.EINTR {
			return
		}
		busy = n > 0
		if busy && l.busyPoll > 0 {
			lastFound = l.now()
		}
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == l.wake {
				var b [8]byte
				syscall.Read(l.wake, b[:])
				busy = true // look again: the ops may have more to do
				continue
			}
			if la := l.listeners[ev.Fd]; la != nil {
				l.accept(la)
				continue
			}
			l.mu.Lock()
			lc := l.conns[ev.Fd]
			l.mu.Unlock()
			if lc != nil {
				l.handle(lc)
			}
		}
	}
}

// forEach calls f on a snapshot of the loop's connections.
func (l *loop) forEach(f func(*loopConn)) {
	l.mu.Lock()
	all := make([]*loopConn, 0, len(l.conns))
	for _, lc := range l.conns {
		all = append(all, lc)
	}
	l.mu.Unlock()
	for _, lc := range all {
		f(lc)
	}
}

// handle acts on an event epoll reported for lc.
func (l *loop) handle(lc *loopConn) {
	switch {
	case lc.pending != nil:
		l.flush(lc)
	case lc.draining:
		l.discard(lc)
	default:
		l.echo(lc)
	}
}

// readLimit is how much echo may read: after Shutdown's deadline, only
// what the peer had sent before it.
func (lc *loopConn) readLimit(buf []byte) []byte {
	if lc.stopped {
		return buf[:min(lc.final, len(buf))]
	}
	return buf
}

// echo reads what the peer sent and writes it back.
func (l *loop) echo(lc *loopConn) {
	buf := lc.readLimit(l.buf)
	n, err := ioRetry(func() (int, error) { return syscall.Read(lc.fd, buf) })
	switch {
	case err == syscall.EAGAIN:
		return
	case err != nil:
		l.fail(lc, "read", err)
		return
	case n == 0:
		l.close(lc, CloseEOF, nil)
		return
	}
	if lc.stopped {
		lc.final -= n
	}
	if t := lc.c.received(n); !t.IsZero() {
		lc.readAt = int64(t.Sub(l.epoch))
	}
	lc.written = 0
	l.writeBack(lc, l.buf[:n])
}

// writeBack writes p to the peer; what the socket does not take now is
// kept, and reading waits until it is written.
func (l *loop) writeBack(lc *loopConn, p []byte) {
	m, err := ioRetry(func() (int, error) { return syscall.Write(lc.fd, p) })
	if err != nil && err != syscall.EAGAIN {
		l.sent(lc, lc.written+max(m, 0), false)
		l.fail(lc, "write", err)
		return
	}
	m = max(m, 0)
	lc.written += m
	if m == len(p) {
		l.releasePending(lc)
		l.sent(lc, lc.written, true)
		if lc.stopped && lc.final == 0 {
			l.shutWrite(lc)
		}
		return
	}
	if lc.pending == nil {
		pw := pendingWrites.Get().(*pendingWrite)
		pw.rest = append(pw.buf[:0], p[m:]...)
		lc.pending = pw
		l.watch(lc, syscall.EPOLLOUT)
		return
	}
	lc.pending.rest = lc.pending.rest[m:]
}

// dropPending returns lc's pending buffer to the pool, if it has one.
func (lc *loopConn) dropPending() bool {
	pw := lc.pending
	if pw == nil {
		return false
	}
	pw.rest = nil
	pendingWrites.Put(pw)
	lc.pending = nil
	return true
}

// flush goes on writing what a full socket did not take.
func (l *loop) flush(lc *loopConn) {
	l.writeBack(lc, lc.pending.rest)
}

func (l *loop) releasePending(lc *loopConn) {
	if !lc.dropPending() {
		return
	}
	if !lc.draining && (!lc.stopped || lc.final > 0) {
		l.watch(lc, syscall.EPOLLIN|syscall.EPOLLRDHUP)
	}
}

// sent reports a chunk written back (or, if !ok, failed) to the observer.
func (l *loop) sent(lc *loopConn, n int, ok bool) {
	if lc.c.obs == nil {
		return
	}
	latency := time.Duration(-1)
	if ok {
		latency = time.Duration(l.now() - lc.readAt)
	}
	lc.c.obs.Sent(n, latency)
}

// watch sets the events epoll waits for on lc's socket.
func (l *loop) watch(lc *loopConn, events uint32) {
	ev := syscall.EpollEvent{Events: events, Fd: int32(lc.fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, lc.fd, &ev); err != nil {
		l.fail(lc, "epoll_ctl", err)
	}
}

// stop is Shutdown's deadline for lc: it reads only what the peer sent
// before it (the receive queue now) and writes all it read back, then it
// sends FIN and discards what the peer sends until drainLinger has passed
// (closeForShutdown's lingering close).
func (l *loop) stop(lc *loopConn) {
	if lc.stopped {
		return
	}
	lc.stopped = true
	lc.stopBy = l.now() + int64(drainLinger)
	lc.final = queuedBytesFD(lc.fd)
	lc.c.stopping.Store(true)
	lc.c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
	if lc.pending == nil && lc.final == 0 {
		l.shutWrite(lc)
	}
}

// shutWrite sends FIN and from then on discards what the peer sends.
func (l *loop) shutWrite(lc *loopConn) {
	if err := syscall.Shutdown(lc.fd, syscall.SHUT_WR); err != nil {
		l.close(lc, CloseShutdown, nil)
		return
	}
	lc.draining = true
	l.watch(lc, syscall.EPOLLIN|syscall.EPOLLRDHUP)
}

// discard reads and drops what a peer sends after FIN, until it ends.
func (l *loop) discard(lc *loopConn) {
	n, err := ioRetry(func() (int, error) { return syscall.Read(lc.fd, l.buf) })
	if err == syscall.EAGAIN {
		return
	}
	if err != nil || n == 0 {
		l.close(lc, CloseShutdown, nil)
	}
}

// fail closes lc after a failed system call.
func (l *loop) fail(lc *loopConn, op string, err error) {
	oerr := &opError{op, os.NewSyscallError(op, err)}
	reason := lc.c.closeReason(oerr)
	if lc.stopped {
		reason = CloseShutdown
	}
	l.close(lc, reason, oerr)
}

// close closes lc's socket and ends the connection: logs, observer,
// limits, and the Server's count of open connections.
func (l *loop) close(lc *loopConn, reason CloseReason, err error) {
	l.mu.Lock()
	_, open := l.conns[int32(lc.fd)]
	delete(l.conns, int32(lc.fd))
	l.mu.Unlock()
	if !open {
		return
	}
	c := lc.c
	// Logged before the socket closes, as the goroutine engine and the
	// seed do: a peer that has seen the end of its echo finds the
	// connection's log complete.
	if !lc.stopped { // a stopped connection logged its closing already
		if err == nil {
			err = &opError{"read", io.EOF}
			if reason == CloseShutdown {
				err = &opError{"read", net.ErrClosed}
			}
		}
		c.logClose(err, reason)
	}
	syscall.Close(lc.fd) // also takes it out of the epoll set
	lc.dropPending()
	c.finish(reason)
}

// epollPoll is epoll_wait with a zero timeout, as a raw system call: it
// never blocks, so it need not tell the scheduler, which a loop under load
// would otherwise do for every batch of events.
func epollPoll(epfd int, events []syscall.EpollEvent) (int, error) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// ioRetry runs a read or write system call again while it is interrupted.
func ioRetry(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != syscall.EINTR {
			return n, err
		}
	}
}

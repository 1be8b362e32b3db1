package echo

import (
	"errors"
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
// of that model serves plain TCP the way gnet does instead: the accept
// loop takes raw sockets from the listener (accept4, never registered in
// the runtime's poller), and one event loop per CPU waits on epoll for all
// of them, reads into one buffer of its own, and writes the bytes back at
// once. A connection whose peer does not read keeps what is left to write
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
	fd            int
	local, remote net.Addr
}

func (f *fdConn) Read([]byte) (int, error)         { return 0, errLoopOwned }
func (f *fdConn) Write([]byte) (int, error)        { return 0, errLoopOwned }
func (f *fdConn) Close() error                     { return os.NewSyscallError("close", syscall.Close(f.fd)) }
func (f *fdConn) LocalAddr() net.Addr              { return f.local }
func (f *fdConn) RemoteAddr() net.Addr             { return f.remote }
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
	next    int
	wg      sync.WaitGroup
}

// loopsFor returns what Serve needs to serve ln with event loops: the
// accept and start functions, and the listener to track and close in
// place of ln. ok is false when ln is to be served with goroutines.
func (s *Server) loopsFor(ln net.Listener) (accept func() (net.Conn, error), start func(*conn), tracked net.Listener, ok bool) {
	tl, isTCP := ln.(*net.TCPListener)
	if !isTCP || s.noLoops || s.IdleTimeout > 0 || s.WriteTimeout > 0 || s.logsData() {
		return nil, nil, nil, false
	}
	dl, err := newDupListener(tl, s.ListenConfig)
	if err != nil {
		return nil, nil, nil, false
	}
	return dl.accept, s.loops.add, dl, true
}

// listenerCheckInterval is how often an accept that waits on a
// dupListener looks whether the listener was closed by its owner.
const listenerCheckInterval = 250 * time.Millisecond

// dupListener is a TCP listener accepted on through a duplicate of its
// socket wrapped in an os.File: a listener's own RawConn cannot wait for
// readability, a file's can. Close closes both. A listener closed by its
// owner, not through Close, is noticed within listenerCheckInterval.
type dupListener struct {
	*net.TCPListener
	lrc  syscall.RawConn // the listener's, to see whether it is closed
	file *os.File
	rc   syscall.RawConn // the duplicate's, to wait and accept on
}

// newDupListener duplicates tl's socket, and sets on it the options that
// its accepted sockets inherit (Linux copies them), as net sets them on
// each connection it accepts: no Nagle delay, and keep-alive as lc says.
func newDupListener(tl *net.TCPListener, lc net.ListenConfig) (*dupListener, error) {
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
	// The socket is non-blocking (net made it so), so the file waits in
	// the runtime's poller.
	file := os.NewFile(uintptr(dup), "echo-listener")
	rc, err := file.SyscallConn()
	if err == nil {
		err = file.SetReadDeadline(time.Now().Add(listenerCheckInterval))
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return &dupListener{TCPListener: tl, lrc: lrc, file: file, rc: rc}, nil
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

// Close closes the duplicate, which wakes a pending accept, and the
// listener.
func (d *dupListener) Close() error {
	d.file.Close()
	return d.TCPListener.Close()
}

// accept accepts one connection as a non-blocking socket outside the
// runtime's poller, for an event loop.
func (d *dupListener) accept() (net.Conn, error) {
	local := d.Addr()
	for {
		var (
			fd   int
			sa   syscall.Sockaddr
			aerr error
		)
		err := d.rc.Read(func(lfd uintptr) bool {
			for {
				fd, sa, aerr = syscall.Accept4(int(lfd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
				if aerr != syscall.EINTR {
					break
				}
			}
			return aerr != syscall.EAGAIN
		})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if cerr := d.lrc.Control(func(uintptr) {}); cerr != nil {
				return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: local, Err: cerr}
			}
			d.file.SetReadDeadline(time.Now().Add(listenerCheckInterval))
			continue
		}
		if err != nil {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: local, Err: err}
		}
		if aerr != nil {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: local, Err: os.NewSyscallError("accept4", aerr)}
		}
		return &fdConn{fd: fd, local: local, remote: sockaddrToTCP(sa)}, nil
	}
}

func sockaddrToTCP(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)))
	case *syscall.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				ip = ip.WithZone(ifi.Name)
			}
		}
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(sa.Port)))
	}
	return &net.TCPAddr{}
}

// add hands an accepted, admitted connection to one of the loops.
func (ls *loops) add(c *conn) {
	l, err := ls.pick(c.srv)
	if err == nil {
		err = l.add(c)
	}
	if err != nil {
		c.log(zerolog.WarnLevel).Err(err).Msg("cannot serve the connection: " + err.Error())
		c.rwc.Close()
		c.finish(CloseError)
	}
}

// pick starts the loops on first use and returns the next one in turn.
func (ls *loops) pick(s *Server) (*loop, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return nil, ErrServerClosed
	}
	if !ls.started {
		ls.started = true
		for range runtime.GOMAXPROCS(0) {
			l, err := newLoop(s)
			if err != nil {
				for _, l := range ls.all {
					l.exit()
				}
				ls.all = nil
				return nil, err
			}
			ls.all = append(ls.all, l)
			ls.wg.Add(1)
			go func() {
				defer ls.wg.Done()
				l.run()
			}()
		}
	}
	if len(ls.all) == 0 {
		return nil, errors.New("echo: event loops failed to start")
	}
	l := ls.all[ls.next%len(ls.all)]
	ls.next++
	return l, nil
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
	epfd int
	wake int // an eventfd that interrupts epoll_wait for a request
	buf  []byte

	mu    sync.Mutex
	conns map[int32]*loopConn
	// Requests from other goroutines, taken up by the loop when woken.
	// They stay set: a connection added after one was made is treated
	// the same.
	stopReq, closeReq, exitReq bool
}

// loopConn is what a loop keeps for one connection.
type loopConn struct {
	c  *conn
	fd int

	// pending is the part of the last read not yet written back, in a
	// pooled buffer (pendingBuf); reads wait until it is written.
	pending    []byte
	pendingBuf *[]byte
	written    int       // bytes of the current chunk written so far
	readAt     time.Time // when the current chunk was read, for the observer

	stopped  bool      // Shutdown's deadline passed: drain, then close
	stopBy   time.Time // when a stopped connection is closed in any case
	draining bool      // write side shut: discard what the peer still sends
}

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
	l := &loop{epfd: epfd, wake: int(wake), buf: make([]byte, fastBufferSize), conns: make(map[int32]*loopConn)}
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
	one := [8]byte{1}
	syscall.Write(l.wake, one[:])
}

func (l *loop) stopConns()  { l.request(&l.stopReq) }
func (l *loop) closeConns() { l.request(&l.closeReq) }
func (l *loop) exit()       { l.request(&l.exitReq) }

// run serves the loop's connections until exit is requested.
func (l *loop) run() {
	defer syscall.Close(l.epfd)
	defer syscall.Close(l.wake)
	events := make([]syscall.EpollEvent, loopEvents)
	busy := false // the last wait found events: look again without blocking
	for {
		l.mu.Lock()
		stop, closeAll, exit := l.stopReq, l.closeReq, l.exitReq
		l.mu.Unlock()
		if closeAll || exit {
			l.forEach(func(lc *loopConn) { l.close(lc, CloseShutdown, nil) })
		}
		if exit {
			return
		}
		timeout := -1
		if stop {
			now := time.Now()
			l.forEach(func(lc *loopConn) {
				l.stop(lc)
				if now.After(lc.stopBy) {
					l.close(lc, CloseShutdown, nil)
				}
			})
			timeout = int(loopStopPoll / time.Millisecond)
		}
		var (
			n   int
			err error
		)
		if busy && timeout < 0 {
			n, err = epollPoll(l.epfd, events)
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
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == l.wake {
				var b [8]byte
				syscall.Read(l.wake, b[:])
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

// echo reads what the peer sent and writes it back.
func (l *loop) echo(lc *loopConn) {
	n, err := ioRetry(func() (int, error) { return syscall.Read(lc.fd, l.buf) })
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
	lc.readAt = lc.c.received(n)
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
		if lc.stopped {
			l.shutWrite(lc)
		}
		return
	}
	if lc.pending == nil {
		lc.pendingBuf = fastBuffers.Get().(*[]byte)
		lc.pending = append((*lc.pendingBuf)[:0], p[m:]...)
		l.watch(lc, syscall.EPOLLOUT)
		return
	}
	lc.pending = lc.pending[m:]
}

// flush goes on writing what a full socket did not take.
func (l *loop) flush(lc *loopConn) {
	l.writeBack(lc, lc.pending)
}

func (l *loop) releasePending(lc *loopConn) {
	if lc.pendingBuf == nil {
		return
	}
	fastBuffers.Put(lc.pendingBuf)
	lc.pending, lc.pendingBuf = nil, nil
	if !lc.draining && !lc.stopped {
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
		latency = time.Since(lc.readAt)
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

// stop is Shutdown's deadline for lc: it stops reading; what it has read
// is still written back, then it sends FIN and discards what the peer
// sends until drainLinger has passed (closeForShutdown's lingering close).
func (l *loop) stop(lc *loopConn) {
	if lc.stopped {
		return
	}
	lc.stopped = true
	lc.stopBy = time.Now().Add(drainLinger)
	lc.c.stopping.Store(true)
	lc.c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
	if lc.pending == nil {
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
	syscall.Close(lc.fd) // also takes it out of the epoll set
	if lc.pendingBuf != nil {
		fastBuffers.Put(lc.pendingBuf)
		lc.pending, lc.pendingBuf = nil, nil
	}
	c := lc.c
	if !lc.stopped { // a stopped connection logged its closing already
		if err == nil {
			err = &opError{"read", io.EOF}
			if reason == CloseShutdown {
				err = &opError{"read", net.ErrClosed}
			}
		}
		c.logClose(err, reason)
	}
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

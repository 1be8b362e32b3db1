package echo

import (
	"errors"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Parking idle connections.
//
// A goroutine blocked in a read keeps a stack of at least 2 KiB, which is
// most of what an idle connection costs. So on Linux, a connection served
// by echoFast that has read nothing for a sweep interval or two is parked:
// its socket is registered in an epoll instance of the server's own, and
// its goroutine ends. When the socket becomes readable (data, end of
// stream or an error), a new goroutine takes the connection up again where
// it stopped. A parked connection holds only its heap objects and socket.
//
// Active connections pay one atomic increment per read for this; the
// decision to park is made by a sweeper that runs four times a second.
//
// Connections are parked only when the server has no IdleTimeout (its read
// deadline would otherwise be lost while parked), which is the default.

// parkSweepInterval is how often the sweeper looks for idle connections:
// a connection that read nothing between two sweeps is parked.
const parkSweepInterval = 250 * time.Millisecond

// parkEvents is how many epoll events the waiter takes at once.
const parkEvents = 128

// parkReleaseBatch is by how many the parked connections must have grown
// since memory was last given back for a sweep to give the memory of their
// goroutine stacks back to the operating system (debug.FreeOSMemory,
// which runs a garbage collection), at most once every
// parkReleaseInterval. Freed stacks otherwise stay resident: the runtime
// keeps free memory up to its next heap goal. Connections that park and
// wake over and over leave the parked count as it is, and cause no
// release.
const (
	parkReleaseBatch    = 1000
	parkReleaseInterval = time.Second
)

// parker is a Server's epoll instance for parked connections, with the
// goroutines that wait on it and that sweep for idle connections. Its zero
// value is ready; it starts on first use and stops with close.
type parker struct {
	mu      sync.Mutex
	started bool
	closed  bool
	failed  bool     // the epoll instance could not be made: never park
	epoll   *os.File // waited on through the runtime's poller
	epfd    int
	byFD    map[int32]*conn // registered connections, by socket
	stop    chan struct{}   // closed to stop the sweeper
	wg      sync.WaitGroup
}

// connPark is what a conn carries for parking.
type connPark struct {
	parkable atomic.Bool   // echoFast may park this connection
	reads    atomic.Uint32 // reads so far (wraps); the sweeper compares it between sweeps
	parkReq  atomic.Bool   // the sweeper asks the connection to park
	parked   atomic.Bool   // parked: no goroutine serves the connection

	lastReads uint32 // reads at the last sweep (the sweeper's own)

	// registered and fd: the socket is in the epoll instance under fd
	// (guarded by parker.mu).
	registered bool
	fd         int32
}

// mayPark reports whether c may be parked while idle, making it parkable
// on first call if the server can park it (and starting the parker).
func (c *conn) mayPark() bool {
	return c.parkable.Load() || c.startParking()
}

// countRead counts a read of a parkable connection, for the sweeper.
func (c *conn) countRead() { c.reads.Add(1) }

func (c *conn) startParking() bool {
	s := c.srv
	if s.IdleTimeout > 0 {
		return false
	}
	p := &s.park
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.failed {
		return false
	}
	if !p.started {
		if err := p.startLocked(s); err != nil {
			p.failed = true
			return false
		}
	}
	c.parkable.Store(true)
	return true
}

func (p *parker) startLocked(s *Server) error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return os.NewSyscallError("setnonblock", err)
	}
	// A non-blocking descriptor makes a File that waits in the runtime's
	// poller: no thread is held, and Close wakes the waiter.
	p.epoll = os.NewFile(uintptr(epfd), "echo-park-epoll")
	rc, err := p.epoll.SyscallConn()
	if err != nil {
		p.epoll.Close()
		return err
	}
	p.epfd = epfd
	p.byFD = make(map[int32]*conn)
	p.stop = make(chan struct{})
	p.started = true
	p.wg.Add(2)
	go p.wait(rc)
	go p.sweep(s)
	return nil
}

// wait takes up parked connections whose sockets become readable, until
// the epoll instance is closed.
func (p *parker) wait(rc syscall.RawConn) {
	defer p.wg.Done()
	events := make([]syscall.EpollEvent, parkEvents)
	for {
		var (
			n    int
			werr error
		)
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, werr = syscall.EpollWait(int(fd), events, 0)
				if werr != syscall.EINTR {
					break
				}
			}
			return werr != nil || n > 0 // nothing ready: wait in the poller
		})
		if err != nil || werr != nil {
			return // closed
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			c := p.byFD[ev.Fd]
			p.mu.Unlock()
			if c != nil {
				c.unpark()
			}
		}
	}
}

// sweep asks connections that read nothing since the last sweep to park.
func (p *parker) sweep(s *Server) {
	defer p.wg.Done()
	t := time.NewTicker(parkSweepInterval)
	defer t.Stop()
	var (
		baseline    int       // parked connections when memory was last given back, or fewer since
		lastRelease time.Time // when memory was last given back
	)
	for {
		var now time.Time
		select {
		case <-p.stop:
			return
		case now = <-t.C:
		}
		parked := 0
		s.forEachConn(func(c *conn) {
			if !c.parkable.Load() || c.parkReq.Load() {
				return
			}
			if c.parked.Load() {
				parked++
				return
			}
			if r := c.reads.Load(); r != c.lastReads {
				c.lastReads = r
				return
			}
			c.parkReq.Store(true)
			c.rwc.SetReadDeadline(aLongTimeAgo) // wakes the read
		})
		baseline = min(baseline, parked)
		if parked-baseline >= parkReleaseBatch && now.Sub(lastRelease) >= parkReleaseInterval {
			baseline, lastRelease = parked, now
			debug.FreeOSMemory()
		}
	}
}

// close stops the parker once no connection is left. Calls after the
// first do nothing.
func (p *parker) close() {
	p.mu.Lock()
	stop := p.started && !p.closed
	p.closed = true
	p.mu.Unlock()
	if !stop {
		return
	}
	close(p.stop)
	p.epoll.Close()
	p.wg.Wait()
}

// parkRequested reports whether a read that failed with err did so because
// the sweeper asked c to park, and readies c for parking if so: it clears
// the read deadline that woke it, unless Shutdown set one meanwhile.
func (c *conn) parkRequested(err error) bool {
	if !c.parkReq.Swap(false) || !errors.Is(err, os.ErrDeadlineExceeded) || c.stopping.Load() {
		return false
	}
	c.rwc.SetReadDeadline(time.Time{})
	if c.stopping.Load() { // Shutdown's deadline was just undone: restore it
		c.rwc.SetReadDeadline(aLongTimeAgo)
		return false
	}
	return true
}

// park registers c's socket with the parker so that it is taken up again
// when readable. It reports whether it did; then the calling goroutine
// must return at once without touching c, which another goroutine may be
// serving already. When it did not, the caller goes on serving c.
func (c *conn) park(rc syscall.RawConn) bool {
	p := &c.srv.park
	c.parked.Store(true)
	var regErr error
	err := rc.Control(func(fd uintptr) {
		regErr = p.register(c, int32(fd))
	})
	if err == nil && regErr == nil && !c.stopping.Load() {
		return true
	}
	// Not registered, closed, or shutting down: keep serving, unless
	// Close or Shutdown already took c up (then it is theirs).
	return !c.parked.CompareAndSwap(true, false)
}

// register adds c's socket to the epoll instance, or re-arms it, for one
// readiness event.
func (p *parker) register(c *conn, fd int32) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return os.ErrClosed
	}
	op := syscall.EPOLL_CTL_MOD
	if !c.registered {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(p.epfd, op, int(fd), &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	c.registered, c.fd = true, fd
	p.byFD[fd] = c
	return nil
}

// unpark takes a parked connection up again in a new goroutine. Only one
// caller wins: the waiter, Shutdown or Close.
func (c *conn) unpark() {
	if c.parked.CompareAndSwap(true, false) {
		go c.serve(true)
	}
}

// forgetParked removes c from the parker before its socket is closed, so
// that a new connection given the same descriptor is not mistaken for it.
func (c *conn) forgetParked() {
	if !c.registered {
		return
	}
	p := &c.srv.park
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byFD[c.fd] == c {
		delete(p.byFD, c.fd)
	}
	c.registered = false
}

package echo

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoctl/echoctl/pkg/echo/internal/netpoll"
)

// Event loops.
//
// A goroutine per connection pays the runtime scheduler for every message
// (the goroutine parks in the poller after a read that finds the socket
// empty, and is woken again) and, per connection, the goroutine and the
// poller registration. On Linux, the connections whose sockets the server
// owns as descriptors (plain TCP and Unix sockets; engineFor) are served
// the way gnet does instead: one event loop per CPU waits on epoll for a
// duplicate of the listening socket and for the sockets it accepts from it
// (accept4: raw sockets, never registered in the runtime's poller), reads
// into one buffer of its own, and writes the bytes back at once. A
// connection whose peer does not read keeps what is left to write in a
// pooled buffer and is not read from until that is written (epoll asks for
// writability instead of readability), which is the seed's drain(): the
// same back-pressure as the goroutine's blocking write.
//
// What the goroutine engine does with deadlines and per-read logging the
// loops do themselves: IdleTimeout and WriteTimeout are a sweep over the
// loop's connections every sixteenth of the shorter one (sweep, with the
// time a byte last moved kept per connection on the loop's clock), and
// when data is logged a loop reads at most BufferSize bytes at a time and
// logs each chunk as the goroutine's echo does. Everything else — access
// lists, connection limits, the observer, logging of accepts and closes,
// graceful and forced shutdown — is the same policy code (conn.go,
// limits.go, timeouts.go).
//
// The stages a Server may add to its connections (stage.go: a greeting,
// a header read, delayed or sliced writes) run in the loop too, without
// blocking it: a chunk a stage makes wait is held, and the loop's timer
// heap (loopTimers) bounds how long epoll_wait sleeps, as the sweeps do
// (loop_stage_linux.go).
//
// This file holds the loops and their run; loop_listener_linux.go how
// they accept, and loop_conn_linux.go how they serve a connection. Their
// system calls (the epoll set, its wake-up and alarm, the raw socket
// calls) are package netpoll's, which knows nothing of connections.

// loopEvents is how many epoll events a loop takes at once.
const loopEvents = 256

// loopYield is how long a loop that always finds work runs before it lets
// the other goroutines on its processor run.
const loopYield = time.Millisecond

// yieldCheckEvents is how many events a busy loop handles between two
// looks at the clock for loopYield: each costs at least a system call, so
// the loop still yields within a few loopYields.
const yieldCheckEvents = 16

// loopStopPoll is how often a loop looks at the deadlines of connections
// that Shutdown stopped.
const loopStopPoll = 50 * time.Millisecond

// loops is a Server's set of event loops; its zero value is ready. They
// start with the first connection and stop with close.
type loops struct {
	mu      sync.Mutex
	started bool
	closed  bool
	all     []*loop
	wg      sync.WaitGroup
}

// loopsAvailable reports whether this system has event loops (engineFor).
const loopsAvailable = true

// loopListen readies ln, which engineFor gave to the event loops, for
// them: it starts the loops if they have not started, and returns the
// listener that Serve tracks and closes in place of ln and the function
// that serves it. An error (the loops cannot start, or ln's socket cannot
// be duplicated: out of descriptors) leaves ln to goroutines.
func (s *Server) loopListen(ln net.Listener) (tracked net.Listener, serve func(lconf *listenerConf) error, err error) {
	if err := s.loops.start(s); err != nil {
		return nil, nil, err
	}
	ll, err := newLoopListener(ln, s.ListenConfig)
	if err != nil {
		return nil, nil, err
	}
	return ll, func(lconf *listenerConf) error { return s.serveLoops(ll, lconf) }, nil
}

// start makes the loops, one per CPU, on first use: all of them, or none
// and an error (their descriptors closed), so that a later Serve tries
// again.
func (ls *loops) start(s *Server) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	switch {
	case ls.closed:
		return ErrServerClosed
	case ls.started:
		return nil
	}
	made := make([]*loop, 0, runtime.GOMAXPROCS(0))
	for range cap(made) {
		l, err := newLoop(s, uint16(len(made)))
		if err != nil {
			for _, m := range made {
				m.poll.Close()
			}
			return fmt.Errorf("event loop: %w", err)
		}
		made = append(made, l)
	}
	ls.started, ls.all = true, made
	for _, l := range made {
		ls.wg.Go(l.run)
	}
	return nil
}

// listen registers ll with every loop (started by loopListen).
func (ls *loops) listen(s *Server, ll *loopListener, lconf *listenerConf) error {
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return ErrServerClosed
	}
	all := ls.all
	ls.mu.Unlock()
	var err error
	for _, l := range all {
		ran := l.do(func() {
			la := &loopAccept{ll: ll, lconf: lconf, lname: lconf.name, local: ll.Addr(), unix: ll.unix}
			l.listeners[int32(ll.fd)] = la
			if rerr := l.resume(la); rerr != nil && err == nil {
				err = rerr
			}
		})
		if !ran && err == nil {
			err = l.failure() // the loop failed (the loops are not closed)
		}
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

// get returns the i-th loop.
func (ls *loops) get(i uint16) *loop {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.all[i]
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

// loop is one event loop: an epoll set (its Poller also wakes it for a
// request, and when it must look again of its own accord), the
// connections registered in it, and a read buffer.
type loop struct {
	srv   *Server
	index uint16 // in loops.all
	poll  *netpoll.Poller
	buf   []byte
	epoch time.Time // the zero of the loop's clock (now)
	// busyPoll is Server.BusyPoll in nanoseconds: how long after finding
	// events the loop keeps looking for more before it sleeps.
	busyPoll int64
	done     chan struct{} // closed when run returns

	// What the loop does for every connection, from the Server's fields.
	logsData bool // log each chunk ("received b'...'", "sent b'...'")
	readSize int  // the most one read takes: BufferSize when data is logged
	// idle and stall are IdleTimeout and writeStall in nanoseconds (0:
	// none); sweep looks for connections past them every sweepEvery (0:
	// never), next at nextSweep (loop clock).
	idle, stall, sweepEvery, nextSweep int64
	expired                            []*loopConn // sweep's, kept for reuse

	// timers are when the stages of its connections (loopConn.run) are
	// due to act (loop_stage_linux.go; the loop's own: no lock).
	timers loopTimers
	// spareRuns are empty stageRuns for the next connections: closed
	// connections', reset, and those opened made for connections to
	// which no stage applied; at most maxSpareRuns.
	spareRuns []*stageRun

	// listeners are the listening sockets this loop accepts on (the
	// loop's own: no lock).
	listeners map[int32]*loopAccept
	paused    int // how many of them wait to resume (pausedUntil set)

	// stopping is set once Shutdown has stopped a connection of the
	// loop: it then looks at their deadlines every loopStopPoll (the
	// loop's own: no lock).
	stopping bool

	mu sync.Mutex
	// conns are the loop's connections by socket descriptor: a table,
	// not a map, since descriptors are small numbers the kernel reuses
	// (lookup is on every event). Only the loop changes it, under mu,
	// and reads it without; nconns counts its entries.
	conns  []*loopConn
	nconns int
	ops    []func() // work for the loop from other goroutines (do)
	// Requests from other goroutines, taken up by the loop when woken:
	// connections to stop (Shutdown) or close (Close), and the loop's end.
	toStop, toClose []*loopConn
	exitReq         bool
	// ended is set when run returns, before it closes its Poller, whose
	// numbers may then be reused: nobody may wake it after.
	ended bool
	err   error // why run failed, if it did
}

// now is the loop's clock: monotonic nanoseconds since the loop started.
func (l *loop) now() int64 { return int64(time.Since(l.epoch)) }

// minSweep is the shortest time between two timeout sweeps.
const minSweep = time.Millisecond

func newLoop(s *Server, index uint16) (*loop, error) {
	poll, err := netpoll.New()
	if err != nil {
		return nil, err
	}
	l := &loop{srv: s, index: index, poll: poll, epoch: time.Now(), busyPoll: int64(s.BusyPoll), done: make(chan struct{}),
		listeners: make(map[int32]*loopAccept)}
	l.readSize = fastBufferSize
	if s.logsData() {
		l.logsData, l.readSize = true, s.bufferSize()
	}
	l.buf = make([]byte, max(fastBufferSize, l.readSize))
	l.idle, l.stall = int64(s.idleTimeout()), int64(s.writeStall())
	if l.stall > 0 { // the shorter of the two timeouts (writeStall)
		l.sweepEvery = max(l.stall/deadlineSlack, int64(minSweep))
	}
	return l, nil
}

// add registers lc's socket with the loop.
func (l *loop) add(lc *loopConn) error {
	if l.sweepEvery > 0 {
		lc.movedAt = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.exitReq {
		return ErrServerClosed
	}
	if err := l.poll.Add(int(lc.fd), unix.EPOLLIN|unix.EPOLLRDHUP, netpoll.KindConn); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	if n := int(lc.fd) + 1; n > len(l.conns) {
		l.conns = append(l.conns, make([]*loopConn, n-len(l.conns))...)
	}
	l.conns[lc.fd] = lc
	l.nconns++
	return nil
}

// connAt returns the connection whose socket is fd, or nil. The loop
// calls it without mu (it alone changes conns); others, with it.
func (l *loop) connAt(fd int32) *loopConn {
	if int(fd) < len(l.conns) {
		return l.conns[fd]
	}
	return nil
}

// forget takes lc out of the loop's table, and reports whether it was
// there (not closed already).
func (l *loop) forget(lc *loopConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connAt(lc.fd) != lc {
		return false
	}
	l.conns[lc.fd] = nil
	l.nconns--
	return true
}

// post asks the loop to stop lc (Shutdown) or, if abort, to close it
// (Close), and wakes it.
func (l *loop) post(lc *loopConn, abort bool) {
	l.mu.Lock()
	if abort {
		l.toClose = append(l.toClose, lc)
	} else {
		l.toStop = append(l.toStop, lc)
	}
	l.mu.Unlock()
	l.wakeUp()
}

// has reports whether lc is still open in the loop: its descriptor is its
// own, not one a newer connection was given.
func (l *loop) has(lc *loopConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connAt(lc.fd) == lc
}

// request sets a request flag and wakes the loop.
func (l *loop) request(flag *bool) {
	l.mu.Lock()
	*flag = true
	l.mu.Unlock()
	l.wakeUp()
}

func (l *loop) wakeUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.poll.Wake()
}

// failure is why the loop stopped before it was asked to.
func (l *loop) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		return ErrServerClosed
	}
	return l.err
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

func (l *loop) exit() { l.request(&l.exitReq) }

// polling reports whether the loop, having last found events at
// lastFound, is still within Server.BusyPoll of it and keeps looking
// without sleeping.
func (l *loop) polling(lastFound int64) bool {
	return l.busyPoll > 0 && l.now()-lastFound < l.busyPoll
}

// run serves the loop's connections until exit is requested, or until
// epoll fails (failed).
func (l *loop) run() {
	defer func() {
		l.mu.Lock()
		l.ended = true
		l.poll.Close()
		l.mu.Unlock()
		close(l.done)
	}()
	events := make([]unix.EpollEvent, loopEvents)
	busy := false       // the last wait found events: look again without blocking
	var lastFound int64 // when a wait last found events (loop clock)
	var lastYield int64 // when the loop last let other goroutines run (loop clock)
	unclocked := 0      // events handled since the loop last read the clock
	for {
		l.mu.Lock()
		exit := l.exitReq
		ops, toStop, toClose := l.ops, l.toStop, l.toClose
		l.ops, l.toStop, l.toClose = nil, nil, nil
		l.mu.Unlock()
		for _, op := range ops {
			op()
		}
		for _, lc := range toClose {
			l.close(lc, CloseShutdown, nil)
		}
		for _, lc := range toStop {
			if l.has(lc) {
				l.stop(lc)
				l.stopping = true
			}
		}
		if exit {
			l.forEach(func(lc *loopConn) { l.close(lc, CloseShutdown, nil) })
			return
		}
		// next is when the loop must look again of its own accord (loop
		// clock; 0: never): when a paused listener resumes, Shutdown's
		// next look at its deadlines, the next sweep or the next timer.
		var next int64
		soonest := func(t int64) {
			if next == 0 || t < next {
				next = t
			}
		}
		// now is the loop clock of this turn, read once, when first
		// needed (0: not yet): a clock read is a fair part of a short
		// connection's cost on a virtual machine, and a loop with
		// timers (a PROXY listener's header bounds) needs it each turn.
		var now int64
		clock := func() int64 {
			if now == 0 {
				now = l.now()
			}
			return now
		}
		if l.paused > 0 {
			if d := l.resumeListeners(); d >= 0 {
				soonest(clock() + int64(d))
			}
		}
		if l.stopping {
			now := clock()
			l.forEach(func(lc *loopConn) {
				if lc.stopped && now > lc.stopBy {
					if !lc.draining && (lc.pending != nil || lc.final > 0) {
						lc.echoLost()
					}
					l.close(lc, CloseShutdown, nil)
				}
			})
			soonest(now + int64(loopStopPoll))
		}
		if l.sweepEvery > 0 && l.nconns > 0 { // with none, nothing to sweep: sleep
			now := clock()
			if now >= l.nextSweep {
				l.sweep(now)
				l.nextSweep = now + l.sweepEvery
			}
			soonest(l.nextSweep)
		}
		if len(l.timers) > 0 {
			l.fireTimers(clock())
			if len(l.timers) > 0 {
				soonest(l.timers[0].due)
			}
		}
		var (
			n   int
			err error
		)
		// After a wait that found events, look again without sleeping
		// (a raw call: it cannot block), and spin so while busy-polling;
		// the top of the loop fires timers and sweeps on each turn.
		if busy {
			n, err = l.poll.Poll(events)
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
			wait := -1 // until an event, the alarm's among them
			if next != 0 {
				if now := clock(); next <= now {
					wait = 0
				} else if aerr := l.poll.AlarmAt(now, next); aerr != nil {
					l.failed(aerr)
					return
				}
			}
			n, err = l.poll.Wait(events, wait)
		}
		if err != nil && err != unix.EINTR {
			l.failed(os.NewSyscallError("epoll_wait", err))
			return
		}
		busy = n > 0
		if busy {
			unclocked += n
		}
		// The loop's reads and writes are raw system calls
		// (netpoll/socket_linux.go), during which the runtime does not hand
		// its processor on: a loop that always finds work lets the other
		// goroutines (connections served by goroutines, timers, the
		// metrics endpoint) run at least every loopYield. It reads the
		// clock for that every yieldCheckEvents events, not for every
		// batch (a clock read is a fair part of a short connection's
		// cost on a virtual machine), and after every batch when it
		// busy-polls, which needs to know when it last found work.
		if busy && (l.busyPoll > 0 || unclocked >= yieldCheckEvents) {
			unclocked = 0
			now := l.now()
			lastFound = now
			if now-lastYield >= int64(loopYield) {
				runtime.Gosched()
				lastYield = now
			}
		}
		for _, ev := range events[:max(n, 0)] {
			switch ev.Pad {
			case netpoll.KindAlarm:
				l.poll.Rang()
				busy = true // look again: something is due
			case netpoll.KindWake:
				l.poll.Woken()
				busy = true // look again: the ops may have more to do
			case netpoll.KindListener:
				if la := l.listeners[ev.Fd]; la != nil {
					l.accept(la)
				}
			default:
				if lc := l.connAt(ev.Fd); lc != nil {
					l.handle(lc, ev.Events)
				}
			}
		}
	}
}

// failed ends a loop that can no longer wait for events (epoll_wait failed,
// which only a broken epoll descriptor makes it do): it logs why, closes
// its connections, so that Shutdown does not wait for them for ever, and
// ends Serve on every listener it accepted on with the error, as Serve
// does for an accept error it cannot retry. The other loops go on serving
// their connections until then.
func (l *loop) failed(err error) {
	err = fmt.Errorf("event loop: %w", err)
	l.mu.Lock()
	l.err = err
	l.exitReq = true // add refuses connections from now on
	n := l.nconns
	l.mu.Unlock()
	l.srv.Logger.Error().Str("logger", "main").Err(err).Int("conns", n).
		Msgf("%v: closing its %d connections", err, n)
	l.forEach(func(lc *loopConn) { l.close(lc, CloseError, &opError{"poll", err}) })
	for _, la := range l.listeners {
		select {
		case la.ll.errc <- err:
		default:
		}
	}
}

// forEach calls f on a snapshot of the loop's connections.
func (l *loop) forEach(f func(*loopConn)) {
	l.mu.Lock()
	all := make([]*loopConn, 0, l.nconns)
	for _, lc := range l.conns {
		if lc != nil {
			all = append(all, lc)
		}
	}
	l.mu.Unlock()
	for _, lc := range all {
		f(lc)
	}
}

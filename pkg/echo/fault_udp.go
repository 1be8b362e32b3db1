package echo

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The faults of a UDP listener (Faults.Drop, Duplicate, Reorder, Delay,
// Jitter, Corrupt) at work. ServePacket makes a udpFaults for a listener
// that has a fault stage (fault_stage.go: the Server's Faults, or the
// listener's own keys), and reads the faults in force from that stage for
// each datagram, so that SetFaults applies to the datagrams that arrive
// afterwards. A listener without one pays nothing; one whose faults inject
// none on UDP pays an atomic load a datagram.
//
// An answer is never larger than its datagram and goes only to its
// sender: a duplicate is the same bytes a second time, and passes the
// per-source rate limit as any answer does (no amplification beyond two
// answers, and none past the rate). Delayed and held answers wait in one
// bounded queue (MaxHeldAnswers) that one goroutine a listener sends from
// when each is due; a datagram whose answer would overflow it is dropped
// (DropFaultQueue). At shutdown every answer still held is sent.

// MaxHeldAnswers bounds the answers one UDP listener holds back at once
// for its delay and reorder faults.
const MaxHeldAnswers = 1024

// MaxReorderHold is the longest a reordered answer (Faults.Reorder) waits
// for the listener's next answer before it is sent anyway.
const MaxReorderHold = 100 * time.Millisecond

// udpAnswer is an answer a fault holds back.
type udpAnswer struct {
	due    time.Time // when to send it
	readAt time.Time // when its datagram was read, for the latency
	peer   packetPeer
	data   []byte // a copy, the datagram's size
	dup    bool   // send it twice (Duplicate)
	held   bool   // reordered: goes right after the next answer, or at due
}

// answerQueue is a min-heap of answers by due time.
type answerQueue []*udpAnswer

func (q answerQueue) Len() int           { return len(q) }
func (q answerQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q answerQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *answerQueue) Push(x any)        { *q = append(*q, x.(*udpAnswer)) }
func (q *answerQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return a
}

// udpFaults is one UDP listener's faults at work.
type udpFaults struct {
	s        *Server
	pc       net.PacketConn
	udp      *net.UDPConn // pc, if it is one
	st       *faultStage
	g        *udpGuard
	obs      ConnObserver // nil: none
	fobs     FaultObserver
	dobs     PacketDropObserver
	listener string

	mu     sync.Mutex
	rng    *rand.Rand
	queue  answerQueue  // delayed answers, and held ones (by their bound)
	nHeld  atomic.Int32 // held answers in queue, waiting for the next answer
	wake   chan struct{}
	done   chan struct{}
	exited chan struct{}

	logs [len(faultKindNames)]logLimiter
}

// newUDPFaults starts the faults of the listener pc, whose stage is st.
func (s *Server) newUDPFaults(pc net.PacketConn, st *faultStage, obs ConnObserver, g *udpGuard) *udpFaults {
	u := &udpFaults{
		s: s, pc: pc, st: st, g: g, obs: obs, listener: packetListenerName(pc),
		wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{}),
	}
	u.udp, _ = pc.(*net.UDPConn)
	u.fobs, _ = obs.(FaultObserver)
	u.dobs, _ = obs.(PacketDropObserver)
	cfg := st.cur.Load()
	u.rng = rand.New(rand.NewPCG(st.draw(cfg), st.draw(cfg)))
	go u.run()
	return u
}

// answer answers the datagram data from p (src its address), read at
// readAt, as the faults in force say, and reports false when none applies
// to it: the caller then answers it plainly (and calls answered).
func (u *udpFaults) answer(p packetPeer, data []byte, readAt time.Time) bool {
	f := &u.st.cur.Load().f
	if !f.packetEnabled() {
		return false
	}
	u.mu.Lock()
	if f.Share > 0 && f.Share < 1 && !chance(u.rng.Uint64(), f.Share) {
		u.mu.Unlock()
		return false
	}
	drop := f.Drop > 0 && chance(u.rng.Uint64(), f.Drop)
	corrupt := !drop && f.Corrupt > 0 && len(data) > 0 && chance(u.rng.Uint64(), f.Corrupt)
	if corrupt {
		data[u.rng.IntN(len(data))] ^= 1 << u.rng.IntN(8)
	}
	dup := !drop && f.Duplicate > 0 && chance(u.rng.Uint64(), f.Duplicate)
	held := !drop && f.Reorder > 0 && chance(u.rng.Uint64(), f.Reorder)
	var delay time.Duration
	if !drop && !held && (f.Delay > 0 || f.Jitter > 0) {
		delay = f.Delay
		if f.Jitter > 0 {
			delay += time.Duration(u.rng.Int64N(2*int64(f.Jitter)+1)) - f.Jitter
		}
		delay = max(delay, 0)
	}
	u.mu.Unlock()

	switch {
	case drop:
		u.act(FaultDrop, "fault: leaving datagrams unanswered with probability %v", f.Drop)
		return true
	case corrupt:
		u.act(FaultCorrupt, "fault: flipping a bit of UDP answers with probability %v", f.Corrupt)
	}
	if !held && delay == 0 {
		u.send(&udpAnswer{peer: p, data: data, dup: dup, readAt: readAt})
		u.answered()
		return true
	}
	a := &udpAnswer{peer: p, data: append([]byte(nil), data...), dup: dup, held: held, readAt: readAt}
	if held {
		a.due = readAt.Add(MaxReorderHold)
	} else {
		a.due = readAt.Add(delay)
	}
	u.mu.Lock()
	full := len(u.queue) >= MaxHeldAnswers
	if !full {
		heap.Push(&u.queue, a)
		if held {
			u.nHeld.Add(1)
		}
	}
	first := !full && u.queue[0] == a
	u.mu.Unlock()
	if full {
		if src, ok := p.source(); ok {
			u.s.dropped(u.g, u.dobs, u.listener, p, src, len(data), DropFaultQueue)
		}
		return true
	}
	if held {
		u.act(FaultReorder, "fault: holding UDP answers back behind the next one with probability %v", f.Reorder)
	} else if f.Jitter > 0 {
		u.act(FaultDelay, "fault: delaying UDP answers by %v±%v", f.Delay, f.Jitter)
	} else {
		u.act(FaultDelay, "fault: delaying UDP answers by %v", f.Delay)
	}
	if first {
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// answered sends, right after an answer, the answers held back for the
// next one (Reorder); it costs an atomic load when none is held.
func (u *udpFaults) answered() {
	if u.nHeld.Load() == 0 {
		return
	}
	u.mu.Lock()
	var held []*udpAnswer
	kept := u.queue[:0]
	for _, a := range u.queue {
		if a.held {
			held = append(held, a)
		} else {
			kept = append(kept, a)
		}
	}
	clear(u.queue[len(kept):])
	u.queue = kept
	heap.Init(&u.queue)
	u.nHeld.Add(-int32(len(held)))
	u.mu.Unlock()
	for _, a := range held {
		u.send(a)
	}
}

// send writes a's answer, twice if it is duplicated and the second passes
// the sender's rate limit.
func (u *udpFaults) send(a *udpAnswer) {
	if !u.write(a) || !a.dup {
		return
	}
	if src, ok := a.peer.source(); ok && u.g.rates != nil {
		if r, ok := u.g.rates.allow(src.Addr(), len(a.data), time.Now()); !ok {
			u.s.dropped(u.g, u.dobs, u.listener, a.peer, src, len(a.data), r)
			return
		}
	}
	if u.write(a) {
		u.act(FaultDuplicate, "fault: answering datagrams twice with probability %v", u.st.cur.Load().f.Duplicate)
	}
}

// write writes a's answer once, as readPackets does, and reports whether
// it went.
func (u *udpFaults) write(a *udpAnswer) bool {
	var err error
	if u.udp != nil {
		_, err = u.udp.WriteToUDPAddrPort(a.data, a.peer.ap)
	} else {
		_, err = u.pc.WriteTo(a.data, a.peer.addr)
	}
	if u.obs != nil {
		if err != nil {
			u.obs.Sent(0, -1)
		} else {
			u.obs.Sent(len(a.data), time.Since(a.readAt))
		}
	}
	if err != nil {
		if !errors.Is(err, net.ErrClosed) { // Close, not Shutdown: nothing to say
			u.s.writeFailed(u.g, a.peer, err)
		}
		return false
	}
	if u.s.logsData() {
		u.s.logDatagram(a.peer, "sent ", a.data)
	}
	return true
}

// act counts a fault that acted on a datagram, and logs it at most once
// a second for each kind, with the number of times since the last line.
func (u *udpFaults) act(kind FaultKind, format string, args ...any) {
	if u.fobs != nil {
		u.fobs.Fault(kind)
	}
	e := u.s.Logger.Info()
	if e == nil {
		return
	}
	ok, suppressed := u.logs[kind].allow(time.Now(), dropLogInterval, func(n int) {
		u.s.Logger.Info().Str("logger", "main").Str("listener", u.listener).Str("fault", kind.String()).Int("faults_unlogged", n).
			Msgf("%d more %s faults since the last report", n, kind)
	})
	if !ok {
		e.Discard()
		return
	}
	msg := fmt.Sprintf(format, args...)
	if suppressed > 0 {
		msg += fmt.Sprintf(" (%d more since the last report)", suppressed)
	}
	e.Str("logger", "main").Str("listener", u.listener).Str("fault", kind.String()).
		Int("faults_unlogged", suppressed).Msg(msg)
}

// run sends the held answers as they fall due, until stop.
func (u *udpFaults) run() {
	defer close(u.exited)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		u.mu.Lock()
		var due []*udpAnswer
		now := time.Now()
		for len(u.queue) > 0 && !u.queue[0].due.After(now) {
			a := heap.Pop(&u.queue).(*udpAnswer)
			if a.held {
				u.nHeld.Add(-1)
			}
			due = append(due, a)
		}
		next := time.Hour
		if len(u.queue) > 0 {
			next = u.queue[0].due.Sub(now)
		}
		u.mu.Unlock()
		for _, a := range due {
			u.send(a)
		}
		if len(due) > 0 {
			u.answered()
		}
		timer.Reset(next)
		select {
		case <-timer.C:
		case <-u.wake:
		case <-u.done:
			return
		}
	}
}

// stop ends run and sends every answer still held, in the order they
// were due: none is lost at shutdown.
func (u *udpFaults) stop() {
	close(u.done)
	<-u.exited
	for i := range u.logs {
		u.logs[i].flush()
	}
	u.mu.Lock()
	var rest []*udpAnswer
	for len(u.queue) > 0 {
		rest = append(rest, heap.Pop(&u.queue).(*udpAnswer))
	}
	u.nHeld.Store(0)
	u.mu.Unlock()
	for _, a := range rest {
		u.send(a)
	}
	if len(rest) > 0 {
		if e := u.s.Logger.Info(); e != nil {
			e.Str("logger", "main").Str("listener", u.listener).Int("answers", len(rest)).
				Msgf("fault: %d held UDP answers sent at shutdown", len(rest))
		}
	}
}

package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// UDPHeaderSize is the smallest datagram a udp:// run sends: its header,
// which the rest of the datagram (bytes of the run's pattern) follows.
// Every field is big-endian:
//
//	bytes  0-7   the run's identifier, random: a datagram that does not
//	             start with it is not this run's, and is ignored
//	bytes  8-15  the sequence number, from 0 on each socket
//	bytes 16-23  the send time, in nanoseconds from the run's start
//	bytes 24-27  the socket's index, from 0
//	bytes 28-31  the CRC-32 (IEEE) of bytes 0-27
//
// An echo server that drops or reorders on purpose can read the sequence
// number at bytes 8-15.
const UDPHeaderSize = 32

// udpReadSize holds any datagram, IPv6's largest included, and one byte
// more, so that an echo longer than what was sent shows.
const udpReadSize = 64<<10 + 1

// udpSocket is one socket of a udp:// run: a sender goroutine paces its
// datagrams while a receiver goroutine verifies and counts the echoes.
type udpSocket struct {
	r  *runner
	id int
	c  net.Conn
	w  *worker // counts and times the echoes

	// sent counts the datagrams sent, written by the sender; winLo and
	// winHi are the sequence numbers sent in the measured window,
	// [winLo, winHi), read once the sender has returned.
	sent         atomic.Int64
	winLo, winHi int64
	// stopped is set when the sender has sent its last datagram, and
	// distinct counts the sequence numbers echoed at least once: when
	// both say every datagram is back, drained is closed, and the run
	// need not wait out the drain.
	stopped   atomic.Bool
	distinct  atomic.Int64
	drained   chan struct{}
	drainOnce sync.Once

	// The receiver's own, read once it has returned.
	seen       []uint64 // a bit per sequence number echoed
	maxSeq     int64    // the highest sequence number echoed, -1 for none
	stats      UDPStats // Received, Reordered, Duplicates and Stray, of the window
	jitter     float64  // RFC 3550's J, in nanoseconds
	transit    int64    // the last datagram's transit time, for jitter
	hasTransit bool
	hasJitter  bool // two datagrams or more echoed: jitter is an estimate
}

// runUDP runs datagrams at a udp:// address: each of cfg.Conns connected
// sockets sends its share of cfg.Rate datagrams per second, open loop,
// from the start to the end of the measured window, and the run then
// drains the echoes for up to cfg.OpTimeout. Datagrams sent in the
// window are counted, lost, reordered or duplicated (UDPStats), and the
// latency of each is timed from its send time to its first echo.
func (r *runner) runUDP(parent context.Context) (*Result, error) {
	cfg := r.cfg
	defer r.begin(parent, cfg.OpTimeout+endGrace)()
	drainEnd := r.end.Add(cfg.OpTimeout)
	if _, err := rand.Read(r.runID[:]); err != nil {
		return nil, fmt.Errorf("bench: run identifier: %w", err)
	}
	r.pacer = newPacer(cfg.Rate, cfg.Conns, r.measureStart)
	defer r.pacer.close()

	res := &Result{Mode: cfg.Mode, Addr: cfg.Addr, Conns: cfg.Conns, Size: cfg.Size, Rate: cfg.Rate,
		Warmup: cfg.Warmup.Seconds(), Duration: cfg.Duration.Seconds()}
	var srv *ServerStats
	if cfg.ServerPID != 0 {
		srv = &ServerStats{PID: cfg.ServerPID}
		res.Server = srv
	}
	socks := make([]*udpSocket, 0, cfg.Conns)
	r.workers = make([]*worker, 0, cfg.Conns)
	for i := range cfg.Conns {
		c, err := r.connect(i, nil) // before the window
		if err != nil {
			r.addError(i, err)
			break
		}
		s := &udpSocket{r: r, id: i, c: c, w: newWorker(r, i), maxSeq: -1, winLo: -1, drained: make(chan struct{})}
		socks = append(socks, s)
		r.workers = append(r.workers, s.w)
	}
	var senders, receivers sync.WaitGroup
	for _, s := range socks {
		receivers.Go(s.receive)
		senders.Go(s.send)
	}
	if cfg.Progress != nil {
		receivers.Go(r.reportProgress)
	}
	// The seconds, and the run's latencies, as every mode has them: the
	// workers record each echo's, and the sampler gathers them.
	seconds := &sampler{r: r}
	receivers.Go(seconds.runSeconds)
	// The CPU times are read at the measured window's two ends, as in
	// every mode (run).
	var cpuBefore, cpuAfter cpuSample
	measuring := r.waitUntil(r.measureStart)
	if measuring {
		cpuBefore = sampleCPU(cfg.ServerPID)
	}
	finished := measuring && r.waitUntil(r.end)
	cut := time.Now()
	if measuring {
		cpuAfter = sampleCPU(cfg.ServerPID)
	}
	senders.Wait()
	if finished {
		r.drain(socks, drainEnd)
	}
	r.halt()
	r.stop()
	close(r.sampled)
	receivers.Wait()
	for _, s := range socks {
		r.closeConn(s.c)
	}
	seconds.finish(cut, r.totals())

	r.mu.Lock()
	fatal := r.fatal
	r.mu.Unlock()
	if fatal != nil {
		return nil, fatal
	}
	elapsed := r.end.Sub(r.measureStart)
	res.WarmupElapsed = cfg.Warmup.Seconds()
	if !finished {
		elapsed = max(cut.Sub(r.measureStart), 0)
		if cut.Before(r.measureStart) {
			res.WarmupElapsed = cut.Sub(r.start).Seconds()
		}
	}
	res.Interrupted = !finished
	res.Elapsed = elapsed.Seconds()
	res.UDP = udpStats(socks)
	res.UDP.Scheduled = r.pacer.ticksIn(elapsed)
	res.Messages = res.UDP.Received
	res.Bytes = res.UDP.Received * int64(cfg.Size)
	res.Connects = r.connects.Load()
	res.ConnectRetries = r.retries.Load()
	if elapsed > 0 {
		res.MessagesPerSec = float64(res.Messages) / elapsed.Seconds()
		res.MBPerSec = float64(res.Bytes) / elapsed.Seconds() / 1e6
	}
	if measuring {
		cpuFigures(res, srv, cpuBefore, cpuAfter, cut.Sub(r.measureStart), 0)
	}
	if err := r.settle(res, seconds); err != nil {
		return res, err
	}
	if res.Messages == 0 {
		return res, fmt.Errorf("%w: no datagram echoed of the %d sent in the %s measured", ErrRunFailed, res.UDP.Sent, elapsed.Round(time.Millisecond))
	}
	return res, nil
}

// drain waits until every socket has its every datagram back, or until
// end, or the run is cut short.
func (r *runner) drain(socks []*udpSocket, end time.Time) {
	timer := time.NewTimer(time.Until(end))
	defer timer.Stop()
	for _, s := range socks {
		select {
		case <-s.drained:
		case <-timer.C:
			return
		case <-r.ctx.Done():
			return
		}
	}
}

// udpStats adds up the sockets' counts.
func udpStats(socks []*udpSocket) *UDPStats {
	st := &UDPStats{}
	var jitter float64
	var withJitter int
	for _, s := range socks {
		if s.winLo >= 0 {
			st.Sent += s.winHi - s.winLo
		}
		st.Received += s.stats.Received
		st.Reordered += s.stats.Reordered
		st.Duplicates += s.stats.Duplicates
		st.Stray += s.stats.Stray
		if s.hasJitter {
			jitter += s.jitter
			withJitter++
		}
	}
	st.Lost = st.Sent - st.Received
	if st.Sent > 0 {
		st.LossPercent = 100 * float64(st.Lost) / float64(st.Sent)
	}
	st.JitterSockets = withJitter
	if withJitter > 0 { // a socket with fewer than two echoes has none to average
		st.Jitter = jitter / float64(withJitter) / float64(time.Microsecond)
	}
	return st
}

// send sends the socket's datagrams on its schedule until the measured
// window ends: open loop, each when it is due, or at once when the
// sender is behind.
func (s *udpSocket) send() {
	r := s.r
	defer s.stop()
	size := r.cfg.Size
	buf := make([]byte, size)
	// From its first tick after now, or, once the measured window has
	// begun (no warmup), from the window's first: what the window
	// scheduled while the socket opened goes at once, late (a datagram's
	// latency runs from when it is sent), rather than not at all.
	next, every := r.pacer.firstFrom(s.id, minTime(time.Now(), r.measureStart)), r.pacer.every
	var seq int64
	for {
		due := next
		next = due.Add(every)
		if !due.Before(r.end) || r.done() {
			return
		}
		if time.Until(due) > 0 && !r.awaitDue(s.id, due) {
			return
		}
		now := time.Now()
		if !now.Before(r.end) {
			return
		}
		if s.c.SetWriteDeadline(r.opDeadline(now)) != nil {
			return
		}
		s.fill(buf, seq, now.Sub(r.start))
		// Counted before it goes, so that its echo, which may come back
		// before Write returns, is known to have been sent.
		s.sent.Store(seq + 1)
		if _, err := s.c.Write(buf); err != nil {
			// The datagram did not go; its number is used for the next.
			// A refusal here is an earlier datagram's, which the write
			// reported rather than the read (failed).
			s.sent.Store(seq)
			if r.stopping.Load() || r.done() || !s.failed(err, now) {
				return
			}
			continue
		}
		if r.inWindow(now) {
			if s.winLo < 0 {
				s.winLo = seq
			}
			s.winHi = seq + 1
		}
		seq++
	}
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// stop records that the sender has sent its last datagram.
func (s *udpSocket) stop() {
	s.stopped.Store(true)
	s.checkDrained()
}

// checkDrained closes drained once the sender has stopped and each
// datagram it sent is back. The sender and the receiver both call it,
// each after its own update, so that whichever comes second sees both.
func (s *udpSocket) checkDrained() {
	if s.stopped.Load() && s.distinct.Load() == s.sent.Load() {
		s.drainOnce.Do(func() { close(s.drained) })
	}
}

// fill writes datagram seq, sent at t from the run's start, into b.
func (s *udpSocket) fill(b []byte, seq int64, t time.Duration) {
	copy(b[0:8], s.r.runID[:])
	binary.BigEndian.PutUint64(b[8:16], uint64(seq))
	binary.BigEndian.PutUint64(b[16:24], uint64(t))
	binary.BigEndian.PutUint32(b[24:28], uint32(s.id))
	binary.BigEndian.PutUint32(b[28:32], crc32.ChecksumIEEE(b[0:28]))
	copy(b[UDPHeaderSize:], s.payload(seq, len(b)-UDPHeaderSize))
}

// payload is the n bytes after the header of datagram seq.
func (s *udpSocket) payload(seq int64, n int) []byte {
	return s.r.data(s.w.base+seq, n)
}

// receive reads the echoes until the run halts.
func (s *udpSocket) receive() {
	r := s.r
	buf := make([]byte, udpReadSize)
	if s.c.SetReadDeadline(r.stopAt) != nil {
		return
	}
	for {
		n, err := s.c.Read(buf)
		now := time.Now()
		if err != nil {
			if r.stopping.Load() || r.done() {
				return
			}
			if !s.failed(err, now) {
				return
			}
			// Anything but a refusal pauses.
			if classify(err) != KindRefused && !r.sleep(failPause) {
				return
			}
			continue
		}
		r.heard.Store(true)
		if err := s.handle(buf[:n], now); err != nil {
			r.addError(s.id, err)
		}
	}
}

// failed counts err, a read's or a write's failure at now, and reports whether
// the socket goes on. A refused datagram (ICMP port unreachable) is the
// server's absence, and the next may find it: in the warmup it is not an
// error, as a stream's refused connect is not. The socket's read or its
// write reports it, whichever comes first, so both come here. Refused and
// never answered until noServerUntil, the run ends as a stream's whose
// connects are all refused.
func (s *udpSocket) failed(err error, now time.Time) bool {
	r := s.r
	isRefused := classify(err) == KindRefused
	if isRefused && now.Before(r.retryUntil) {
		r.retries.Add(1)
	} else {
		r.addError(s.id, err)
	}
	if isRefused && !r.heard.Load() && !now.Before(r.noServerUntil) {
		r.abort(fmt.Errorf("%w to %s: every datagram sent in %v was refused, no server there: %w", ErrNoServer, r.cfg.Addr, now.Sub(r.start).Round(10*time.Millisecond), err))
		return false
	}
	return true
}

// ownBeyondID reports whether d, whose first 8 bytes are not the run's
// identifier, is one of the datagrams this socket sent with only those
// changed: its header's CRC-32 is right for the run's identifier, and it
// names a sequence number sent and this socket. Another run's datagram
// has a CRC-32 right for its own identifier.
func (s *udpSocket) ownBeyondID(d []byte) (int64, bool) {
	if len(d) < UDPHeaderSize {
		return 0, false
	}
	sum := crc32.Update(crc32.ChecksumIEEE(s.r.runID[:]), crc32.IEEETable, d[8:28])
	seq := int64(binary.BigEndian.Uint64(d[8:16]))
	if sum != binary.BigEndian.Uint32(d[28:32]) || seq < 0 || seq >= s.sent.Load() || binary.BigEndian.Uint32(d[24:28]) != uint32(s.id) {
		return 0, false
	}
	return seq, true
}

// handle verifies and counts one datagram received at now.
func (s *udpSocket) handle(d []byte, now time.Time) error {
	r := s.r
	if len(d) < 8 || !bytes.Equal(d[:8], r.runID[:]) {
		// Not this run's, unless it is one of this socket's damaged
		// where the run's identifier is: cut short within it, or
		// changed in it, the rest intact.
		if bytes.HasPrefix(r.runID[:], d) {
			return s.mismatch(-1, 0, r.runID[:], d)
		}
		if seq, ok := s.ownBeyondID(d); ok {
			return s.mismatch(seq, 0, r.runID[:], d[:8])
		}
		if r.inWindow(now) {
			s.stats.Stray++
		}
		return nil
	}
	if len(d) < UDPHeaderSize {
		return s.mismatch(0, len(d), nil, d)
	}
	seq := int64(binary.BigEndian.Uint64(d[8:16]))
	sentAt := time.Duration(binary.BigEndian.Uint64(d[16:24]))
	var check [4]byte
	binary.BigEndian.PutUint32(check[:], crc32.ChecksumIEEE(d[0:28]))
	switch {
	case !bytes.Equal(d[28:32], check[:]):
		return s.mismatch(seq, 28, check[:], d[28:32])
	case binary.BigEndian.Uint32(d[24:28]) != uint32(s.id) || seq < 0 || seq >= s.sent.Load():
		// A datagram of this run that this socket did not send: another
		// socket's, or one whose header was changed along with its
		// check.
		return s.mismatch(seq, 8, nil, d[8:9])
	}
	want := s.payload(seq, r.cfg.Size-UDPHeaderSize)
	if got := d[UDPHeaderSize:]; !bytes.Equal(got, want) {
		return s.mismatch(seq, UDPHeaderSize, want, got)
	}

	t := r.start.Add(sentAt)
	counted := r.inWindow(t)
	word, bit := seq/64, uint64(1)<<(seq%64)
	for int64(len(s.seen)) <= word {
		s.seen = append(s.seen, 0)
	}
	if s.seen[word]&bit != 0 {
		if counted {
			s.stats.Duplicates++
		}
		return nil
	}
	s.seen[word] |= bit
	reordered := seq < s.maxSeq
	s.maxSeq = max(s.maxSeq, seq)
	if counted {
		s.stats.Received++
		if reordered {
			s.stats.Reordered++
		}
		// RFC 3550, 6.4.1: the difference D of two datagrams' transit
		// times, in the order they arrive, smoothed by 1/16.
		transit := int64(now.Sub(r.start) - sentAt)
		if s.hasTransit {
			s.jitter += (math.Abs(float64(transit-s.transit)) - s.jitter) / 16
			s.hasJitter = true
		}
		s.transit, s.hasTransit = transit, true
		s.w.bytes.Add(int64(len(d)))
		s.w.messages.Add(1)
		s.w.measuredEcho(len(d), now.Sub(t)) // in the window by its send time
	}
	s.distinct.Add(1)
	s.checkDrained()
	return nil
}

// mismatch builds the error for datagram seq (from 0) whose echo got
// differs from want from byte off of the datagram on; want nil means the
// datagram was too short to compare there.
func (s *udpSocket) mismatch(seq int64, off int, want, got []byte) error {
	e := &echo.MismatchError{Datagram: int(min(seq, math.MaxInt32-1)) + 1, Offset: int64(off)}
	if seq < 0 {
		e.Datagram = -1 // too short to say which
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	e.Offset += int64(i)
	switch {
	case i < len(want) && i < len(got):
		e.Sent, e.Received = want[i], got[i]
	case i < len(got) && want != nil:
		e.Received, e.Extra = got[i], true
	case i < len(got):
		e.Received = got[i]
	case i < len(want):
		e.Sent, e.Short = want[i], true
	default:
		e.Short = true
	}
	return &MismatchError{Conn: s.id, Err: e}
}

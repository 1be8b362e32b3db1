package bench

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// worker runs one connection (connrate: one cycle at a time; idle: opens
// its share of the connections).
type worker struct {
	r  *runner
	id int

	// messages and bytes count every echo verified, for the progress
	// reports; measured counts those of the measured window, for the
	// Result.
	messages atomic.Int64
	bytes    atomic.Int64
	measured counts

	// base is where this worker's data starts in the pattern, so that
	// connections send different bytes and cross-talk shows.
	base int64
	buf  []byte
	lat  *latencyRecorder // latencies and bytes of the measured window

	// sched is its part of the pacer's schedule, kept from one
	// connection to the next: the messages due while a failed one waited
	// go once a connection is open again, late, their latency counted from
	// when they were due, so that a stall longer than OpTimeout shows too.
	sched schedule
}

func newWorker(r *runner, id int) *worker {
	return &worker{r: r, id: id, base: int64(id) * 61 % patternPeriod, lat: newLatencyRecorder()}
}

// counts are a worker's echoes in the measured window. Only one goroutine
// at a time counts for a worker (its own, or the reader of its current
// connection), and the run reads them once every worker has returned.
type counts struct {
	messages, bytes int64
}

// echoed counts one verified echo of n bytes, sent at start and verified
// at done.
func (w *worker) echoed(n int, start, done time.Time) {
	w.bytes.Add(int64(n))
	w.messages.Add(1)
	if w.r.inWindow(done) {
		w.measuredEcho(n, done.Sub(start))
	}
}

// measuredEcho counts an echo of n bytes of the measured window, and its
// latency: both in one record, so that a second's bytes are its echoes'.
func (w *worker) measuredEcho(n int, latency time.Duration) {
	w.measured.bytes += int64(n)
	w.measured.messages++
	w.lat.record(int64(latency), int64(n))
}

// received counts n bytes of echo verified at done (of a message that
// completed counts).
func (w *worker) received(n int, done time.Time) {
	w.bytes.Add(int64(n))
	if w.r.inWindow(done) {
		w.measured.bytes += int64(n)
		w.lat.addBytes(int64(n))
	}
}

// completed counts one message (a stream chunk, a connrate cycle) whose
// echo was all verified at done, and times it from start. A message counts
// in the Result, and its latency in the percentiles, when done falls in
// the measured window: the same test for both, so that the Result's
// Messages and Latency.Count agree.
func (w *worker) completed(start, done time.Time) {
	w.messages.Add(1)
	if w.r.inWindow(done) {
		w.measured.messages++
		w.lat.record(int64(done.Sub(start)), 0)
	}
}

// mismatch builds the error for an echo got that differs from want, which
// was sent at offset off of the connection.
func (w *worker) mismatch(off int64, want, got []byte) error {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	e := &echo.MismatchError{Offset: off + int64(i)}
	switch {
	case i < len(want) && i < len(got):
		e.Sent, e.Received = want[i], got[i]
	case i < len(got):
		e.Received, e.Extra = got[i], true
	default:
		e.Sent, e.Short = want[i], true
	}
	return &MismatchError{Conn: w.id, Err: e}
}

// endOfEcho turns the end of stream in the middle of an echo into an error
// that says so; echoed is how much of the connection's echo had arrived.
func endOfEcho(err error, echoed int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errServerClosed(echoed)
	}
	return err
}

// run opens a connection, runs the mode on it until the run ends or it
// fails, and opens another after a failure.
func (w *worker) run() {
	r := w.r
	if r.cfg.Mode == ModeConnRate {
		w.connRate()
		return
	}
	if !r.pace(w.id) {
		return
	}
	w.sched = w.schedule()
	for !r.done() {
		c, err := r.connect(w.id, w.lat)
		if err != nil {
			w.fail(err)
			continue
		}
		switch {
		case r.cfg.Mode == ModeStream:
			err = w.stream(c)
		case r.cfg.Pipeline > 1:
			err = w.pingPongPipelined(c)
		default:
			err = w.pingPong(c)
		}
		r.closeConn(c)
		if err != nil {
			w.fail(err)
		}
	}
}

// fail counts err and pauses before the next connection.
func (w *worker) fail(err error) {
	w.r.addError(w.id, err)
	if !w.r.done() {
		w.r.sleep(failPause)
	}
}

// arm sets c's deadline for an operation starting at t; it reports false
// if the run has ended. Setting the deadline before checking means halt
// cannot slip between the two: either it sees the new deadline and cuts
// it, or this check sees the run ending.
func (w *worker) arm(set func(time.Time) error, t time.Time) bool {
	if set(w.r.opDeadline(t)) != nil {
		return false
	}
	return !w.r.done()
}

// schedule is a connection's (connrate: a worker's) part of the pacer's
// schedule: its next message is due at next, and each one after every
// later; every is zero when the run has no Rate.
type schedule struct {
	next  time.Time
	every time.Duration
}

// schedule starts the pacing of a connection's messages.
func (w *worker) schedule() schedule {
	p := w.r.pacer
	if p == nil {
		return schedule{}
	}
	return schedule{next: p.first(w.id), every: p.every}
}

// wait returns when the next message may go, with the time now and the
// time its latency counts from: now, unless a late echo (or, pipelined, a
// late free slot) held the message past when it was due; then when it was
// due, so that the wait counts against the server. It reports false if
// the run ended meanwhile.
func (w *worker) wait(s *schedule) (from, now time.Time, ok bool) {
	now = time.Now()
	if s.every == 0 {
		return now, now, true
	}
	due := s.next
	s.next = due.Add(s.every)
	if now.Before(due) {
		if !w.r.awaitDue(w.id, due) {
			return now, now, false
		}
		now = time.Now()
		return now, now, true
	}
	return due, now, true
}

// pingPong writes a message and reads it back, one at a time.
func (w *worker) pingPong(c net.Conn) error {
	r := w.r
	size := r.cfg.Size
	if len(w.buf) < size {
		w.buf = make([]byte, size)
	}
	buf := w.buf[:size]
	var sent int64
	for {
		t0, now, ok := w.wait(&w.sched)
		if !ok || !w.arm(c.SetDeadline, now) {
			return nil
		}
		msg := r.data(w.base+sent, size)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if n, err := io.ReadFull(c, buf); err != nil {
			return endOfEcho(err, sent+int64(n))
		}
		if !bytes.Equal(buf, msg) {
			return w.mismatch(sent, msg, buf)
		}
		sent += int64(size)
		w.echoed(size, t0, time.Now())
	}
}

// pingPongPipelined keeps cfg.Pipeline messages outstanding: this
// goroutine writes while another reads the echoes back.
func (w *worker) pingPongPipelined(c net.Conn) error {
	r := w.r
	size := r.cfg.Size
	slots := make(chan struct{}, r.cfg.Pipeline)
	times := make(chan time.Time, r.cfg.Pipeline)
	readDone := make(chan struct{})
	var readErr error
	go func() {
		defer close(readDone)
		readErr = w.readEchoes(c, size, slots, times)
		c.SetWriteDeadline(time.Now()) // unblock the writer
	}()

	var writeErr error
	var sent int64
write:
	for {
		select {
		case slots <- struct{}{}:
		case <-readDone:
			break write
		}
		t, now, ok := w.wait(&w.sched)
		if !ok || !w.arm(c.SetWriteDeadline, now) {
			break
		}
		times <- t
		if _, err := c.Write(r.data(w.base+sent, size)); err != nil {
			writeErr = err
			break
		}
		sent += int64(size)
	}
	c.SetReadDeadline(time.Now()) // unblock the reader
	<-readDone
	return pairError(readErr, writeErr, w.r.done())
}

// pairError is the error that ended a connection on which one goroutine
// wrote while another read, from each one's: the reader's, unless it only
// follows from the writer's: the deadline the writer set to stop it, or
// the end of stream the reader finds after a reset (the kernel reports a
// reset once, to the first call that asks: the writer's, then the reader
// sees the end of stream). The writer's own error counts only while the
// run goes on.
func pairError(readErr, writeErr error, runDone bool) error {
	switch {
	case writeErr != nil && classify(writeErr) == KindReset && errors.Is(readErr, io.ErrUnexpectedEOF):
		return writeErr
	case readErr != nil && (writeErr == nil || classify(readErr) != KindTimeout):
		return readErr
	case writeErr != nil && !runDone:
		return writeErr
	}
	return readErr
}

// readEchoes reads and verifies the pipelined echoes.
func (w *worker) readEchoes(c net.Conn, size int, slots <-chan struct{}, times <-chan time.Time) error {
	r := w.r
	buf := make([]byte, size)
	var got int64
	for {
		if !w.arm(c.SetReadDeadline, time.Now()) {
			return nil
		}
		if n, err := io.ReadFull(c, buf); err != nil {
			return endOfEcho(err, got+int64(n))
		}
		want := r.data(w.base+got, size)
		if !bytes.Equal(buf, want) {
			return w.mismatch(got, want, buf)
		}
		got += int64(size)
		t0 := <-times
		<-slots
		w.echoed(size, t0, time.Now())
	}
}

// mark is a stream chunk in flight: the offset just past its end, and when
// its write started.
type mark struct {
	end int64
	t   time.Time
}

// maxMarks bounds the stream chunks in flight on a connection.
const maxMarks = 1024

// stream writes cfg.Chunk bytes at a time while another goroutine reads the
// echo back and verifies it.
func (w *worker) stream(c net.Conn) error {
	r := w.r
	chunk := r.cfg.Chunk
	marks := make(chan mark, maxMarks)
	readDone := make(chan struct{})
	var readErr error
	go func() {
		defer close(readDone)
		readErr = w.readStream(c, marks)
		c.SetWriteDeadline(time.Now())
	}()

	var writeErr error
	var sent int64
write:
	for {
		t := time.Now()
		if !w.arm(c.SetWriteDeadline, t) {
			break
		}
		select {
		case marks <- mark{end: sent + int64(chunk), t: t}:
		case <-readDone:
			break write
		}
		if _, err := c.Write(r.data(w.base+sent, chunk)); err != nil {
			writeErr = err
			break
		}
		sent += int64(chunk)
	}
	c.SetReadDeadline(time.Now())
	<-readDone
	return pairError(readErr, writeErr, w.r.done())
}

// readStream reads the echo of a stream as it comes, verifying each byte,
// and times each chunk once all of it is back.
func (w *worker) readStream(c net.Conn, marks <-chan mark) error {
	r := w.r
	buf := make([]byte, r.cfg.Chunk)
	var got int64
	var head *mark
	for {
		if !w.arm(c.SetReadDeadline, time.Now()) {
			return nil
		}
		n, err := c.Read(buf)
		if n > 0 {
			want := r.data(w.base+got, n)
			if !bytes.Equal(buf[:n], want) {
				return w.mismatch(got, want, buf[:n])
			}
			got += int64(n)
			now := time.Now()
			w.received(n, now)
			for {
				if head == nil {
					select {
					case m := <-marks:
						head = &m
					default:
					}
				}
				if head == nil || head.end > got {
					break
				}
				w.completed(head.t, now)
				head = nil
			}
		}
		if err != nil {
			return endOfEcho(err, got)
		}
	}
}

// connRate runs the seed client's cycle until the run ends.
func (w *worker) connRate() {
	r := w.r
	var want []byte
	for _, p := range r.cfg.Parts {
		want = append(want, p...)
	}
	buf := make([]byte, len(want)+512)
	w.sched = w.schedule()
	for !r.done() {
		t0, now, ok := w.wait(&w.sched)
		if !ok {
			return
		}
		c, err := r.connect(w.id, w.lat)
		if err == nil {
			err = w.cycle(c, now, want, buf)
			r.closeConn(c)
		}
		if err != nil {
			w.fail(err)
			continue
		}
		w.echoed(len(want), t0, time.Now())
	}
}

// cycle writes each part, half-closes, and reads the echo until the server
// closes. The whole cycle has one deadline, OpTimeout after t0.
func (w *worker) cycle(c net.Conn, t0 time.Time, want, buf []byte) error {
	if !w.arm(c.SetDeadline, t0) {
		return errStopped
	}
	for _, p := range w.r.cfg.Parts {
		if _, err := io.WriteString(c, p); err != nil {
			return err
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return err
		}
	}
	got := 0
	for {
		n, err := c.Read(buf[got:])
		if n > 0 {
			end := got + n
			if end > len(want) || !bytes.Equal(buf[got:end], want[got:end]) {
				return w.mismatch(0, want, buf[:end])
			}
			got = end
		}
		if errors.Is(err, io.EOF) {
			if got < len(want) {
				return errServerClosed(int64(got))
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

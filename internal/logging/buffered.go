package logging

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// FlushEvery is how long a Buffered writer holds a log line at most before
// writing it out: short enough for a person or a log shipper watching the
// log, long enough that a server logging two lines per connection makes a
// few writes a second rather than two system calls per connection.
const FlushEvery = 100 * time.Millisecond

// bufferedMax is how many bytes a Buffered writer holds before it writes
// them out without waiting for the timer.
const bufferedMax = 64 << 10

// stallLimit is how long a write to the destination may take nothing
// before lines are dropped: until then, writers wait for room once
// heldMax is held (a slow reader loses nothing); after it, the destination
// is taken for stalled, and the server must not wait on it.
const stallLimit = time.Second

// heldMax is the most a Buffered writer holds while its destination takes
// nothing (a pipe nobody reads, a terminal stopped with Ctrl-S): beyond it,
// lines are dropped and counted, not held.
const heldMax = 1 << 20

// CloseWait is how long Close waits for the destination to take what is
// held: a destination that takes nothing must not keep a program from
// exiting.
const CloseWait = 2 * time.Second

// ErrLogBlocked is Close's error when the destination did not take what was
// held within CloseWait.
var ErrLogBlocked = errors.New("the log's destination did not take the rest of the log within " + CloseWait.String() + ": it is lost")

// Buffered is an io.Writer that holds what is written to it and writes it to
// its destination in one piece: at most FlushEvery after the first byte it
// holds, as soon as it holds 64 KiB, at once after Close, and on Flush.
// Writes are serialised, so lines stay whole and in the order they were
// written.
//
// A flush writes on a goroutine of its own (the timer's), or on the
// goroutine that calls Flush or Close, and the writers only append
// meanwhile. Once 1 MiB is held, writers wait for the flush to take it, so
// that a slow destination loses nothing; but not past a second of a write
// that takes nothing (a pipe nobody reads): later lines are then dropped,
// and once the destination takes bytes again the notice set with OnDrop
// counts them. A destination that blocks delays the log, and what the
// program logs from (an event loop's connections) a second at most.
//
// A write error from the destination ends the log: it is kept and
// returned by the Flush and Close that follow, and what was held then and
// what is written after is discarded. The writes themselves do not return
// it, so that a logger does not report it once per line (zerolog writes
// each such error to standard error, the very destination that failed).
type Buffered struct {
	dest  io.Writer // the destination
	out   io.Writer // what flushes write to: dest, or a TextWriter to it (New)
	every time.Duration

	mu       sync.Mutex
	idle     sync.Cond   // signalled when a flush ends (writing false) or takes what is held
	since    time.Time   // when the flush's write to the destination began
	stall    *time.Timer // wakes the writers waiting for room at stallLimit
	buf      []byte
	spare    []byte      // the buffer a flush wrote from, for the next
	timer    *time.Timer // armed while buf holds bytes and no flush writes
	armed    bool
	writing  bool // a flush is writing out (and will look again before it stops)
	closed   bool
	dropping bool // lines are dropped until the flush takes what is held
	dropped  int  // lines dropped since the last notice
	noticing bool // the notice of dropped lines is being written: it is never dropped
	onDrop   func(n int)
	err      error
}

// NewBuffered returns a Buffered writer to out that flushes at most every
// after the first byte it holds.
func NewBuffered(out io.Writer, every time.Duration) *Buffered {
	b := &Buffered{dest: out, out: out, every: every}
	b.idle.L = &b.mu
	return b
}

// Unwrap returns the destination, for callers that look at it (is it a
// terminal?).
func (b *Buffered) Unwrap() io.Writer { return b.dest }

// OnDrop sets what logs that n lines were dropped because the destination
// did not keep up while 1 MiB was held: it is called by a flush, once the
// destination has taken bytes again, and may write to b.
func (b *Buffered) OnDrop(notice func(n int)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onDrop = notice
}

// Write holds p to be written out with what is held already; after Close,
// a flush starts at once.
func (b *Buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return len(p), nil // the log has ended (Flush and Close say why)
	}
	for b.writing && !b.noticing && !b.dropping && len(b.buf)+len(p) > heldMax {
		// Wait for the flush to take what is held, unless its write has
		// taken nothing for stallLimit: then drop.
		wait := stallLimit - time.Since(b.since)
		if wait <= 0 {
			b.dropping = true
			break
		}
		if b.stall == nil {
			b.stall = time.AfterFunc(wait, b.wake)
		} else {
			b.stall.Reset(wait)
		}
		b.idle.Wait()
	}
	if b.writing && !b.noticing && b.dropping {
		// Every line from the first dropped on, until the flush takes
		// what is held: the log has one gap, which the notice follows.
		b.dropped++
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	if b.closed || len(b.buf) >= bufferedMax {
		b.schedule(0)
	} else {
		b.schedule(b.every)
	}
	return len(p), nil
}

// wake wakes the writers waiting for room.
func (b *Buffered) wake() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.idle.Broadcast()
}

// schedule makes a flush start within d (0: now) on the timer's goroutine,
// unless one is writing already, which looks again before it stops.
// b.mu is held.
func (b *Buffered) schedule(d time.Duration) {
	switch {
	case b.writing:
	case b.timer == nil:
		b.timer = time.AfterFunc(d, b.timed)
		b.armed = true
	case !b.armed || d == 0:
		b.timer.Reset(d)
		b.armed = true
	}
}

// timed is the timer's flush.
func (b *Buffered) timed() {
	b.mu.Lock()
	b.armed = false
	if b.writing {
		b.mu.Unlock()
		return // the flush that writes looks again before it stops
	}
	b.writing = true
	b.mu.Unlock()
	_ = b.writeOut()
}

// Flush writes out what is held, after the flush writing now, if any.
func (b *Buffered) Flush() error {
	b.mu.Lock()
	for b.writing {
		b.idle.Wait()
	}
	b.writing = true
	b.mu.Unlock()
	return b.writeOut()
}

// writeOut writes what is held to the destination, outside the lock, until
// nothing is; the caller has set b.writing.
func (b *Buffered) writeOut() error {
	b.mu.Lock()
	for {
		if n := b.dropped; n > 0 && b.onDrop != nil && b.err == nil {
			// What is held came before the first line dropped: the
			// notice follows it, in order, and is never dropped itself.
			b.dropped = 0
			notice := b.onDrop
			b.noticing = true
			b.mu.Unlock()
			notice(n)
			b.mu.Lock()
			b.noticing = false
		}
		if len(b.buf) == 0 || b.err != nil {
			err := b.err
			if b.err != nil {
				b.buf = b.buf[:0]
			}
			b.writing = false
			b.idle.Broadcast()
			b.mu.Unlock()
			return err
		}
		out := b.buf
		b.buf, b.spare = b.spare[:0], nil
		b.dropping = false
		b.since = time.Now()
		b.idle.Broadcast() // room for the writers waiting
		b.mu.Unlock()
		_, err := b.out.Write(out)
		b.mu.Lock()
		if err != nil && b.err == nil {
			b.err = err
		}
		if cap(out) <= bufferedMax*2 {
			b.spare = out[:0]
		}
	}
}

// Close writes out what is held, waiting at most CloseWait for the
// destination to take it, and from then on starts a flush at once for
// each write: lines go out as they come, on the timer's goroutine.
func (b *Buffered) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.timer != nil && b.armed {
		b.timer.Stop()
		b.armed = false
	}
	b.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- b.Flush() }()
	t := time.NewTimer(CloseWait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return ErrLogBlocked
	}
}

// Serialized returns w as a writer that several goroutines may log to at
// once: w itself when it is a Buffered, whose writes are serialised
// already, else w behind zerolog.SyncWriter's lock.
func Serialized(w io.Writer) io.Writer {
	if _, ok := w.(*Buffered); ok {
		return w
	}
	return zerolog.SyncWriter(w)
}

// dropNotice returns the notice of a Buffered that logger logs to
// (OnDrop): a warning from main.
func dropNotice(logger zerolog.Logger) func(n int) {
	return func(n int) {
		logger.Warn().Str("logger", "main").Int("log_lines_dropped", n).
			Msg(fmt.Sprintf("%d log lines dropped: the log's destination did not keep up (1 MiB held)", n))
	}
}

package logging

import (
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

// Buffered is an io.Writer that holds what is written to it and writes it to
// its destination in one piece: at most FlushEvery after the first byte it
// holds, as soon as it holds 64 KiB, and on Flush and Close. Writes are
// serialised, so lines stay whole and in the order they were written;
// nothing is dropped (a writer that blocks delays the next flush, not the
// log), and Close writes out what is left, so a program that closes it
// before it exits loses nothing of its log.
//
// A write error from the destination is kept and returned by the writes
// and the Flush that follow; what was held then is discarded.
type Buffered struct {
	dest  io.Writer // the destination
	out   io.Writer // what flushes write to: dest, or a TextWriter to it (New)
	every time.Duration

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // armed while buf holds bytes
	armed  bool
	closed bool
	err    error
}

// NewBuffered returns a Buffered writer to out that flushes at most every
// after the first byte it holds.
func NewBuffered(out io.Writer, every time.Duration) *Buffered {
	return &Buffered{dest: out, out: out, every: every}
}

// Unwrap returns the destination, for callers that look at it (is it a
// terminal?).
func (b *Buffered) Unwrap() io.Writer { return b.dest }

// Write holds p to be written out with what is held already. After Close it
// writes p through at once.
func (b *Buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return b.out.Write(p)
	}
	b.buf = append(b.buf, p...)
	switch {
	case len(b.buf) >= bufferedMax:
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	case !b.armed:
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.every, b.timed)
		} else {
			b.timer.Reset(b.every)
		}
	}
	return len(p), nil
}

// timed is the timer's flush.
func (b *Buffered) timed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	_ = b.flushLocked()
}

// Flush writes out what is held.
func (b *Buffered) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

// Close writes out what is held, stops the timer, and makes later writes go
// straight through.
func (b *Buffered) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
		b.armed = false
	}
	return b.flushLocked()
}

func (b *Buffered) flushLocked() error {
	if b.err != nil {
		return b.err
	}
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.out.Write(b.buf)
	if err != nil {
		b.err = err
	}
	if cap(b.buf) > bufferedMax*2 {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
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

package echo

import (
	"errors"
	"sync/atomic"
)

// errVerifyStopped ends the wait for the last chunks when the exchange
// ends first (its timeout, or the caller's cancel): the exchange reports
// its context's error.
var errVerifyStopped = errors.New("echo: the exchange ended before the input did")

// verifier compares the echo, as it arrives, with the chunks sent, in order.
type verifier struct {
	pending chan []byte     // chunks sent and not yet echoed, closed after the last
	recycle chan<- []byte   // where fully echoed chunks go back, if not nil
	done    chan struct{}   // closed when the reader stops
	stop    <-chan struct{} // closed when the exchange ends (its context): no more waiting
	// halfClosed is set by the sender as it half-closes, after its last
	// chunk: an end of stream before it is the server's own.
	halfClosed atomic.Bool
	stopped    bool   // next gave up waiting: stop was closed
	head       []byte // the chunk being compared, whole
	cur        []byte // the rest of head still to compare
	offset     int64  // bytes verified so far
}

// next makes cur the next pending chunk; it reports false when there is
// none to compare. With wait, that is when the sender has closed pending
// and every chunk has been compared, or the exchange has ended (stop);
// without, also when no chunk is pending now. Each chunk is pending before
// it is written, so an echoed byte never waits for its chunk: a byte with
// none pending was never sent.
func (v *verifier) next(wait bool) bool {
	for len(v.cur) == 0 {
		var chunk []byte
		var ok bool
		if wait {
			select {
			case chunk, ok = <-v.pending:
			case <-v.stop:
				v.stopped = true
			}
		} else {
			select {
			case chunk, ok = <-v.pending:
			default:
			}
		}
		if !ok {
			return false
		}
		v.head, v.cur = chunk, chunk
		if len(chunk) == 0 {
			v.release(chunk)
		}
	}
	return true
}

func (v *verifier) release(chunk []byte) {
	if v.recycle != nil {
		v.recycle <- chunk[:cap(chunk)]
	}
}

// check compares received with what was sent at the current offset. A
// byte beyond what was sent (or is pending: Send's first message is
// before it is written) is a mismatch at once, even while more input is
// to come: it cannot be the echo of what has not been sent.
func (v *verifier) check(received []byte) error {
	for len(received) > 0 {
		if !v.next(false) {
			return &MismatchError{Offset: v.offset, Received: received[0], Extra: true}
		}
		n := min(len(received), len(v.cur))
		for i := range n {
			if received[i] != v.cur[i] {
				return &MismatchError{Offset: v.offset + int64(i), Sent: v.cur[i], Received: received[i]}
			}
		}
		v.cur = v.cur[n:]
		received = received[n:]
		v.offset += int64(n)
		if len(v.cur) == 0 {
			v.release(v.head)
		}
	}
	return nil
}

// finish reports a short echo when the server closed before every byte sent
// came back, and ErrClosedBeforeEcho when it closed before echoing any.
// After the sender half-closed it waits for the last chunks (the end of
// stream may come before the sender has closed pending); before, the
// server ended the stream while input was still to come, whose echo can
// no longer be complete, and it does not wait for that input.
func (v *verifier) finish() error {
	halfClosed := v.halfClosed.Load()
	switch {
	case halfClosed && !v.next(true) && v.stopped:
		return errVerifyStopped
	case halfClosed && len(v.cur) == 0:
		return nil
	case v.offset == 0:
		return ErrClosedBeforeEcho
	}
	return &MismatchError{Offset: v.offset, Short: true}
}

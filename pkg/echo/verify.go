package echo

// verifier compares the echo, as it arrives, with the chunks sent, in order.
type verifier struct {
	pending chan []byte   // chunks sent and not yet echoed, closed after the last
	recycle chan<- []byte // where fully echoed chunks go back, if not nil
	done    chan struct{} // closed when the reader stops
	head    []byte        // the chunk being compared, whole
	cur     []byte        // the rest of head still to compare
	offset  int64         // bytes verified so far
}

// next makes cur the next pending chunk; it reports false when the sender
// has closed pending and every chunk has been compared.
func (v *verifier) next() bool {
	for len(v.cur) == 0 {
		chunk, ok := <-v.pending
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

// check compares received with what was sent at the current offset.
func (v *verifier) check(received []byte) error {
	for len(received) > 0 {
		if !v.next() {
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
func (v *verifier) finish() error {
	switch {
	case !v.next():
		return nil
	case v.offset == 0:
		return ErrClosedBeforeEcho
	}
	return &MismatchError{Offset: v.offset, Short: true}
}

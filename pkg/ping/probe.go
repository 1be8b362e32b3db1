package ping

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// A Probe is what one probe found.
type Probe struct {
	// Seq is the probe's number, from 1.
	Seq int
	// Time is when it started.
	Time time.Time
	// Peer is the address that answered (or was tried): IP:port, or the
	// socket's path.
	Peer string
	// Connect is how long connecting took (with a TLS handshake, both);
	// 0 when the probe used a connection made before (Reuse, UDP).
	Connect time.Duration
	// RTT is the time from writing the probe to reading all of its echo.
	RTT time.Duration
	// Err is why the probe failed; nil for a reply.
	Err error
	// Kind names the failure: "timeout", "refused", "reset", "closed",
	// "mismatch", "error", or in the Summary alone "interrupted" (cut
	// short by the end of Run's context); empty for a reply.
	Kind string
	// Duplicates and Late are, over UDP, the sequence numbers of earlier
	// probes whose answers came while this one waited: another copy of an
	// answer already taken (ping's DUP!), or an answer that came after its
	// probe's timeout. Neither counts as received.
	Duplicates, Late []int
}

// OK reports whether the probe got its whole echo back.
func (p Probe) OK() bool { return p.Err == nil }

// payload fills buf with probe seq of run id: the sequence number and the
// identifier, 8 bytes each, big-endian, then a pattern that changes with
// seq, so that an echo from another probe never passes for this one's.
func payload(buf []byte, id uint64, seq int) {
	binary.BigEndian.PutUint64(buf[0:8], uint64(seq))
	binary.BigEndian.PutUint64(buf[8:16], id)
	for i := 16; i < len(buf); i++ {
		buf[i] = byte('a' + (i+seq)%26)
	}
}

// stream is one TCP, TLS or Unix connection probes go over.
type stream struct {
	conn net.Conn
	got  []byte
}

// inlineWrite is the largest probe written before its echo is read: one
// that every socket's buffers hold. A larger one is written while its
// echo is read, as the server writes it back before it reads on: written
// whole first, a 1 MiB probe over a Unix socket (whose buffers hold some
// 200 KiB) stalled both ends until the timeout.
const inlineWrite = 64 << 10

// exchange writes p on s and reads its echo, by deadline.
func (s *stream) exchange(p []byte, deadline time.Time) (time.Duration, error) {
	s.conn.SetDeadline(deadline)
	// One byte more than the probe: bytes the server sends after the
	// echo, in the read that ends it, are seen (and not taken for the
	// next probe's echo).
	if cap(s.got) < len(p)+1 {
		s.got = make([]byte, len(p)+1)
	}
	got := s.got[:len(p)+1]
	start := time.Now()
	var werr chan error
	if len(p) <= inlineWrite {
		if _, err := s.conn.Write(p); err != nil {
			return 0, err
		}
	} else {
		werr = make(chan error, 1)
		go func() {
			_, err := s.conn.Write(p)
			werr <- err
		}()
	}
	n, err := io.ReadAtLeast(s.conn, got, len(p))
	rtt := time.Since(start)
	if werr != nil {
		if err != nil {
			s.conn.SetWriteDeadline(time.Now()) // the echo failed: so has the probe
		}
		if e := <-werr; err == nil && e != nil {
			err = e
		}
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, &closedError{echoed: n, of: len(p)}
		}
		return 0, err
	}
	if i := firstDiff(got[:len(p)], p); i >= 0 {
		return 0, &mismatchError{offset: i, sent: p[i], got: got[i]}
	}
	if n > len(p) {
		return 0, &mismatchError{extra: true, offset: len(p), got: got[len(p)]}
	}
	return rtt, nil
}

// answeredWindow is how many of the latest probes a UDP run remembers as
// answered, to tell a copy of an answer from a late one.
const answeredWindow = 1 << 12

// datagrams is a UDP run's answer buffer and what it remembers of the
// probes answered (the latest answeredWindow), so that an answer to an
// earlier probe is told apart: another copy of one already taken (ping's
// DUP!), or one that came after its probe's timeout (late).
type datagrams struct {
	buf      []byte
	answered [answeredWindow]uint64 // seq, at seq%answeredWindow, once answered
}

func newDatagrams(size int) *datagrams {
	return &datagrams{buf: make([]byte, size+1)} // one more: a longer answer is seen
}

// exchange sends probe p (probe seq of the run) on the UDP socket conn
// and waits by deadline for its answer. Answers to earlier probes (the
// run's identifier, an earlier sequence number) are skipped and told to
// the Probe pr, as duplicates or late ones; any other datagram is the
// answer, and a mismatch unless it is p.
func (d *datagrams) exchange(conn net.Conn, p []byte, deadline time.Time, pr *Probe) (time.Duration, error) {
	seq := binary.BigEndian.Uint64(p[0:8])
	conn.SetDeadline(deadline)
	start := time.Now()
	if _, err := conn.Write(p); err != nil {
		return 0, err
	}
	for {
		n, err := conn.Read(d.buf)
		if err != nil {
			return 0, err
		}
		// The socket is connected: every datagram is the server's.
		if n < MinSize {
			return 0, &mismatchError{size: n, of: len(p)}
		}
		if got := binary.BigEndian.Uint64(d.buf[0:8]); bytes.Equal(d.buf[8:16], p[8:16]) && got < seq {
			if got > 0 && d.answered[got%answeredWindow] == got { // 0: no probe's
				pr.Duplicates = append(pr.Duplicates, int(got))
			} else {
				pr.Late = append(pr.Late, int(got))
			}
			continue
		}
		rtt := time.Since(start)
		if n != len(p) {
			return 0, &mismatchError{size: n, of: len(p)}
		}
		if i := firstDiff(d.buf[:n], p); i >= 0 {
			return 0, &mismatchError{offset: i, sent: p[i], got: d.buf[i]}
		}
		d.answered[seq%answeredWindow] = seq
		return rtt, nil
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// mismatchError is an echo that differs from the probe: at byte offset,
// or, for a datagram, in size (of set: a datagram of size bytes answered
// a probe of of).
type mismatchError struct {
	offset    int
	sent, got byte
	size, of  int
	extra     bool // a stream's echo went on past the probe, at offset
}

// Error says where the echo differs, bytes written as send writes them
// (b'\xef').
func (e *mismatchError) Error() string {
	switch {
	case e.extra:
		return fmt.Sprintf("echo differs: received %s after the end of the %d-byte probe", echo.Quote([]byte{e.got}), e.offset)
	case e.of > 0 && e.size < e.of:
		return fmt.Sprintf("echo differs: datagram of %d bytes, shorter than the %d-byte probe", e.size, e.of)
	case e.of > 0: // read into a buffer one byte longer than the probe: size is a floor
		return fmt.Sprintf("echo differs: a datagram longer than the %d-byte probe", e.of)
	}
	return fmt.Sprintf("echo differs at byte %d: sent %s, got %s", e.offset, echo.Quote([]byte{e.sent}), echo.Quote([]byte{e.got}))
}

// closedError is a stream the server closed before echoing all of a probe.
type closedError struct{ echoed, of int }

func (e *closedError) Error() string {
	return fmt.Sprintf("server closed the connection after %d of %d bytes echoed", e.echoed, e.of)
}

// kind names err for a Probe's Kind.
func kind(err error) string {
	var mm *mismatchError
	var cl *closedError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.As(err, &cl):
		return "closed"
	case errors.As(err, &mm):
		return "mismatch"
	}
	return "error"
}

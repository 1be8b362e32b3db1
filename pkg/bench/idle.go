package bench

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// runIdle opens cfg.Conns connections with the workers, checks that each
// echoes one byte, holds them until the run ends, then checks they are
// still open and closes them.
func (r *runner) runIdle(res *Result) {
	conns := make([]net.Conn, r.cfg.Conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(conns) || !r.pace(i) {
					return
				}
				t0 := time.Now()
				c, err := r.connect(i, w.lat)
				if err != nil {
					r.addError(i, err)
					continue
				}
				if err := w.ping(c, i, t0); err != nil {
					r.closeConn(c)
					r.addError(i, err)
					continue
				}
				conns[i] = c
				w.echoed(1, t0, time.Now())
			}
		})
	}
	wg.Wait()
	res.OpenTime = time.Since(r.start).Seconds()

	<-r.sampled // the server's memory is read while every connection is held
	// The connections are checked maxDialers at a time: a TLS connection's
	// check waits a little (heldOpen).
	var held atomic.Int64
	var checks sync.WaitGroup
	sem := make(chan struct{}, maxDialers)
	for i, c := range conns {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		checks.Go(func() {
			defer func() { <-sem }()
			if err := heldOpen(c); err != nil {
				r.addErrorAfterEnd(i, err)
			} else {
				held.Add(1)
			}
			r.closeConn(c)
		})
	}
	checks.Wait()
	res.Held = int(held.Load())
}

// tlsCheckWait is how long the check of a held TLS connection waits for
// what the server may have sent.
const tlsCheckWait = 2 * time.Millisecond

// heldOpen reports whether the server has closed or reset the idle
// connection c, or sent something it was not asked for. A TLS connection's
// socket cannot be peeked at under its records (a close_notify alert is
// data there), so it is read for tlsCheckWait: nothing is still open.
func heldOpen(c net.Conn) error {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return stillOpen(c)
	}
	if err := tc.SetReadDeadline(time.Now().Add(tlsCheckWait)); err != nil {
		return err
	}
	var b [1]byte
	n, err := tc.Read(b[:])
	switch {
	case n > 0:
		return errors.New("the server sent data on an idle connection that had sent nothing more")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the server closed an idle connection")
	default:
		return err
	}
}

// ping writes one byte on the new connection i and reads it back.
func (w *worker) ping(c net.Conn, i int, t0 time.Time) error {
	if !w.arm(c.SetDeadline, t0) {
		return errStopped
	}
	want := w.r.data(int64(i), 1)
	if _, err := c.Write(want); err != nil {
		return err
	}
	var got [1]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return endOfEcho(err, 0)
	}
	if !bytes.Equal(got[:], want) {
		return (&worker{id: i}).mismatch(0, want, got[:])
	}
	return nil
}

// addErrorAfterEnd counts an error found while checking the connections
// held at the end of an idle run.
func (r *runner) addErrorAfterEnd(conn int, err error) {
	k := classify(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs.add(k)
	if r.firstErr == "" {
		r.firstErr = fmt.Sprintf("%s: connection %d: %v", k, conn, err)
	}
}

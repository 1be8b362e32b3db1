package bench

import (
	"bytes"
	"fmt"
	"io"
	"net"
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
				c, err := r.connect(i)
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
	for i, c := range conns {
		if c == nil {
			continue
		}
		if err := stillOpen(c); err != nil {
			r.addErrorAfterEnd(i, err)
		} else {
			res.Held++
		}
		r.closeConn(c)
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

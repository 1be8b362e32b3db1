package echo_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

// Tests of Server.Faults (faults.go, fault_stage.go) on the wire, on
// every variant of TCP (both engines), Unix sockets (both engines) and
// TLS. They assert byte counts and lower bounds on time, never upper
// bounds.

// A faultTarget is a transport and an engine to inject faults on.
type faultTarget struct {
	name string
	// start serves a server, logging to w (at info, nil: nowhere), set
	// up by set, and returns how to dial it.
	start func(t *testing.T, w io.Writer, set func(*echo.Server)) dialFunc
	tls   bool // closes with close_notify; each record is a read
	// noRST: a reset may reach the peer as the end of the stream (a Unix
	// socket has no RST; a wrapped connection cannot set SO_LINGER).
	noRST bool
	// unqueued: what waits unread in the socket at Shutdown's deadline is
	// not echoed (TLS, a wrapped connection: the server cannot see it).
	unqueued bool
}

// dialFunc connects to a target.
type dialFunc func() (net.Conn, error)

// conn connects to the target, closing the connection when the test ends.
func (d dialFunc) conn(t *testing.T) net.Conn {
	t.Helper()
	c, err := d()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// faultTargets are every variant over TCP, a Unix socket on each engine
// and TLS.
func faultTargets() []faultTarget {
	var ts []faultTarget
	for _, v := range variants {
		ts = append(ts, faultTarget{name: "tcp " + v.name, noRST: v.opaque, unqueued: v.opaque, start: func(t *testing.T, w io.Writer, set func(*echo.Server)) dialFunc {
			addr, _ := startVariant(t, v, w, set)
			return func() (net.Conn, error) { return net.DialTimeout("tcp", addr, ioTimeout) }
		}})
	}
	for _, e := range []struct {
		name   string
		engine func(*echo.Server) *echo.Server
	}{{"loops", func(s *echo.Server) *echo.Server { return s }}, {"goroutines", echo.WithoutLoops}} {
		ts = append(ts, faultTarget{name: "unix " + e.name, noRST: true, start: func(t *testing.T, w io.Writer, set func(*echo.Server)) dialFunc {
			srv := e.engine(quietServer(w))
			set(srv)
			path := socketPath(t)
			serveBound(t, srv, "unix://"+path)
			return func() (net.Conn, error) { return net.DialTimeout("unix", path, ioTimeout) }
		}})
	}
	ts = append(ts, faultTarget{name: "tls", tls: true, unqueued: true, start: func(t *testing.T, w io.Writer, set func(*echo.Server)) dialFunc {
		fx := newTLSFixture(t)
		srv := quietServer(w)
		set(srv)
		addr := strings.TrimPrefix(serveTLS(t, srv, &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}), "tls://")
		return func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr, &tls.Config{RootCAs: fx.ca.Pool()})
		}
	}})
	return ts
}

// faultLines returns the messages of the lines logged with a fault.
func faultLines(t *testing.T, logs string) []string {
	t.Helper()
	var msgs []string
	for _, l := range parseLog(t, logs) {
		if strings.HasPrefix(l.Message, "fault: ") {
			msgs = append(msgs, l.Message)
		}
	}
	return msgs
}

// TestFaultDelay: every round trip takes at least the delay less the
// jitter, and the fault is logged once for the connection.
func TestFaultDelay(t *testing.T) {
	const delay, jitter = 80 * time.Millisecond, 20 * time.Millisecond
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			var logs syncBuffer
			dialer := ft.start(t, &logs, func(s *echo.Server) {
				s.Faults = &echo.Faults{Delay: delay, Jitter: jitter}
			})
			c := dialer.conn(t)
			for i := range 3 {
				start := time.Now()
				roundTrip(t, c, []byte("ping"))
				if d := time.Since(start); d < delay-jitter {
					t.Errorf("round trip %d took %v, want at least %v", i, d, delay-jitter)
				}
			}
			c.Close()
			waitLog(t, &logs, `"closing"`)
			if got, want := faultLines(t, logs.String()), []string{"fault: delaying echoes by 80ms±20ms"}; !slicesEqual(got, want) {
				t.Errorf("fault log lines %q, want %q", got, want)
			}
		})
	}
}

// waitLog waits until logs hold s.
func waitLog(t *testing.T, logs *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !strings.Contains(logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the log after %v:\n%s", s, ioTimeout, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFaultSlice: a reader sees the echo in reads of at most the slice,
// the slice delay apart.
func TestFaultSlice(t *testing.T) {
	const slice, gap = 3, 100 * time.Millisecond
	msg := []byte("abcdefg") // one read, even at BufferSize 7: 3+3+1
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			dialer := ft.start(t, nil, func(s *echo.Server) {
				s.Faults = &echo.Faults{Slice: slice, SliceDelay: gap}
			})
			c := dialer.conn(t)
			c.SetDeadline(time.Now().Add(ioTimeout))
			start := time.Now()
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			var got []byte
			var reads []int
			buf := make([]byte, 64)
			for len(got) < len(msg) {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				got, reads = append(got, buf[:n]...), append(reads, n)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("echo %q, want %q", got, msg)
			}
			for _, n := range reads {
				if n > slice {
					t.Errorf("reads of %v bytes, want none above %d", reads, slice)
				}
			}
			if d, least := time.Since(start), 2*gap; d < least {
				t.Errorf("echo took %v, want at least %v (two gaps)", d, least)
			}
		})
	}
}

// TestFaultCloseAfter: a close after N bytes delivers exactly N bytes,
// then the end of the stream (not a reset); a close after a time ends the
// stream no sooner.
func TestFaultCloseAfter(t *testing.T) {
	sent := randomBytes(7, 4000)
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			rec := newRecorder()
			dialer := ft.start(t, nil, func(s *echo.Server) {
				s.Observer = rec
				s.Faults = &echo.Faults{CloseAfter: echo.FaultAfter{Bytes: 1000}}
			})
			c := dialer.conn(t)
			c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := c.Write(sent); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c)
			if err != nil || !bytes.Equal(got, sent[:1000]) {
				t.Fatalf("read %d bytes, %v; want the first 1000 sent, then the end of the stream", len(got), err)
			}
			c.Close()
			rec.waitClosed(t, echo.CloseFault, 1)
		})
		t.Run(ft.name+"/by time", func(t *testing.T) {
			const after = 200 * time.Millisecond
			dialer := ft.start(t, nil, func(s *echo.Server) {
				s.Faults = &echo.Faults{CloseAfter: echo.FaultAfter{Time: after}}
			})
			start := time.Now() // before the server's: before it opens
			c := dialer.conn(t)
			roundTrip(t, c, []byte("before"))
			if got, err := readAll(c); err != nil || len(got) != 0 {
				t.Fatalf("read %q, %v; want the end of the stream", got, err)
			}
			if d := time.Since(start); d < after {
				t.Errorf("closed after %v, want at least %v", d, after)
			}
		})
	}
}

// TestFaultCloseAfterPeerGone: a close after N bytes on a connection
// whose peer has gone already (closed, so its kernel answers the echo
// with a reset) is the fault's close once the fault has acted (its line
// logged): the loops, whose shutdown(2) then failed, counted it as a
// Shutdown's and logged "read error: use of closed network connection".
// An engine that meets the reset before the fault acts closes it as a
// reset. The echo is delayed so that the peer has closed when it is
// written.
func TestFaultCloseAfterPeerGone(t *testing.T) {
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			rec := newRecorder()
			var logs syncBuffer
			dialer := ft.start(t, &logs, func(s *echo.Server) {
				s.Observer = rec
				s.Faults = &echo.Faults{CloseAfter: echo.FaultAfter{Bytes: 1000}, Delay: 50 * time.Millisecond}
			})
			c := dialer.conn(t)
			if _, err := c.Write(randomBytes(8, 4000)); err != nil {
				t.Fatal(err)
			}
			c.Close()
			deadline := time.After(ioTimeout)
			for rec.totalClosed() < 1 {
				select {
				case <-rec.changed:
				case <-deadline:
					t.Fatal("the connection did not close")
				}
			}
			want := echo.CloseReset
			if strings.Contains(logs.String(), "fault: closing after 1000 bytes") {
				want = echo.CloseFault
			}
			if rec.closedCount(want) != 1 {
				t.Errorf("closed %v, want %s; log:\n%s", rec.closed, want, logs.String())
			}
			if strings.Contains(logs.String(), "use of closed network connection") {
				t.Errorf("log:\n%s\nwant no internal error", logs.String())
			}
		})
	}
}

// TestFaultResetAfter: a reset after N bytes gives the peer at most N
// bytes, then ECONNRESET (a Unix socket, which has no RST, may end the
// stream instead).
func TestFaultResetAfter(t *testing.T) {
	sent := randomBytes(8, 4000)
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			var logs syncBuffer
			dialer := ft.start(t, &logs, func(s *echo.Server) {
				s.Faults = &echo.Faults{ResetAfter: echo.FaultAfter{Bytes: 1024}}
			})
			c := dialer.conn(t)
			c.SetDeadline(time.Now().Add(ioTimeout))
			_, werr := c.Write(sent)
			if werr != nil && !isReset(werr) {
				t.Fatal(werr)
			}
			got, err := readAll(c)
			if len(got) > 1024 || !bytes.Equal(got, sent[:len(got)]) {
				t.Fatalf("read %d bytes, want at most 1024, as sent", len(got))
			}
			// The write may have seen the reset first: the read then
			// finds the end of the stream.
			if !isReset(err) && !((ft.noRST || werr != nil) && err == nil) {
				t.Fatalf("after %d bytes: %v; want ECONNRESET", len(got), err)
			}
			waitLog(t, &logs, `"closing"`)
			if got, want := faultLines(t, logs.String()), []string{"fault: reset after 1024 bytes"}; !slicesEqual(got, want) {
				t.Errorf("fault log lines %q, want %q", got, want)
			}
		})
	}
}

// TestFaultAfterTime: a reset or a stall due by time acts on a connection
// that waits to read, no sooner than due: the reset reaches the peer (or
// the end of the stream, without RST), the stalled connection echoes
// nothing more.
func TestFaultAfterTime(t *testing.T) {
	const after = 200 * time.Millisecond
	for _, ft := range faultTargets() {
		t.Run(ft.name+"/reset", func(t *testing.T) {
			dialer := ft.start(t, nil, func(s *echo.Server) {
				s.Faults = &echo.Faults{ResetAfter: echo.FaultAfter{Time: after}}
			})
			start := time.Now()
			c := dialer.conn(t)
			roundTrip(t, c, []byte("before"))
			got, err := readAll(c)
			if len(got) != 0 || !isReset(err) && !(ft.noRST && err == nil) {
				t.Fatalf("read %q, %v; want a reset", got, err)
			}
			if d := time.Since(start); d < after {
				t.Errorf("reset after %v, want at least %v", d, after)
			}
		})
		t.Run(ft.name+"/stall", func(t *testing.T) {
			var logs syncBuffer
			dialer := ft.start(t, &logs, func(s *echo.Server) {
				s.Faults = &echo.Faults{StallAfter: echo.FaultAfter{Time: after}}
			})
			start := time.Now()
			c := dialer.conn(t)
			roundTrip(t, c, []byte("before"))
			waitLog(t, &logs, "fault: stalling 200ms after opening")
			if d := time.Since(start); d < after {
				t.Errorf("stalled after %v, want at least %v", d, after)
			}
			c.SetDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := c.Write([]byte("after")); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after the stall: %d bytes, %v; want a timeout", n, err)
			}
		})
	}
}

// TestFaultStallAfter: a stall after N bytes leaves the peer with exactly
// N bytes, timing out; the idle timeout still closes the connection.
func TestFaultStallAfter(t *testing.T) {
	sent := randomBytes(9, 4000)
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			rec := newRecorder()
			dialer := ft.start(t, nil, func(s *echo.Server) {
				s.Observer = rec
				s.IdleTimeout = 500 * time.Millisecond
				s.Faults = &echo.Faults{StallAfter: echo.FaultAfter{Bytes: 1000}}
			})
			c := dialer.conn(t)
			c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := c.Write(sent); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 1000)
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, sent[:1000]) {
				t.Fatalf("read %d bytes, %v; want the first 1000 sent", len(got), err)
			}
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after 1000 bytes: %d more, %v; want a timeout", n, err)
			}
			rec.waitClosed(t, echo.CloseIdle, 1)
		})
	}
}

// TestFaultCorrupt: with a corrupt probability of 1 every echoed chunk
// differs from what was read by exactly one bit.
func TestFaultCorrupt(t *testing.T) {
	sent := randomBytes(10, 3000)
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			rec := newRecorder()
			dialer := ft.start(t, nil, func(s *echo.Server) {
				s.Observer = rec
				s.Faults = &echo.Faults{Corrupt: 1}
			})
			c := dialer.conn(t)
			c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := c.Write(sent); err != nil {
				t.Fatal(err)
			}
			closeWrite(t, c)
			got, err := readAll(c)
			if err != nil || len(got) != len(sent) {
				t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(sent))
			}
			rec.waitClosed(t, echo.CloseEOF, 1)
			flipped := 0
			for i := range got {
				flipped += bits.OnesCount8(got[i] ^ sent[i])
			}
			if chunks := int(rec.chunks.Load()); flipped != chunks || chunks == 0 {
				t.Errorf("%d bits flipped, want one per chunk echoed: %d", flipped, chunks)
			}
		})
	}
}

// closeWrite half-closes c.
func closeWrite(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// TestFaultRefuseAndShare: of 1,000 connections, about the given fraction
// is reset at once (within 6 standard deviations of the binomial), the
// others echo.
func TestFaultRefuseAndShare(t *testing.T) {
	const conns = 1000
	cases := []struct {
		name          string
		refuse, share float64
	}{
		{"refuse 0.3", 0.3, 0},
		{"share 0.25 of refuse 1", 1, 0.25},
	}
	for _, ft := range faultTargets() {
		if ft.tls || strings.Contains(ft.name, "logged") || strings.Contains(ft.name, "opaque") || strings.Contains(ft.name, "busy") {
			continue // a thousand handshakes or logged connections: slow
		}
		for _, tc := range cases {
			t.Run(ft.name+"/"+tc.name, func(t *testing.T) {
				dialer := ft.start(t, nil, func(s *echo.Server) {
					s.Faults = &echo.Faults{Refuse: tc.refuse, Share: tc.share, Rand: rand.NewPCG(1, 2)}
				})
				refused := 0
				for range conns {
					c, err := dialer()
					if err != nil { // reset before connect returned
						if !isReset(err) {
							t.Fatal(err)
						}
						refused++
						continue
					}
					c.SetDeadline(time.Now().Add(ioTimeout))
					c.Write([]byte("x"))
					n, err := c.Read(make([]byte, 1))
					switch {
					case n == 1:
					case isReset(err) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE):
						refused++
					default:
						t.Fatalf("read %d, %v; want an echo or a reset", n, err)
					}
					c.Close()
				}
				p := tc.refuse
				if tc.share > 0 {
					p *= tc.share
				}
				mean, sigma := conns*p, math.Sqrt(conns*p*(1-p))
				if math.Abs(float64(refused)-mean) > 6*sigma {
					t.Errorf("%d of %d connections refused, want %v±%.0f", refused, conns, mean, 6*sigma)
				}
			})
		}
	}
}

// TestFaultRate: the echo is paced: 64 KiB at 128 KiB/s takes at least
// 0.4 s on every target (its bucket holds a tenth of a second); 1 MiB at
// 256 KiB/s, on one, at least 3.5 s.
func TestFaultRate(t *testing.T) {
	run := func(t *testing.T, ft faultTarget, size, rate int, least time.Duration) {
		dialer := ft.start(t, nil, func(s *echo.Server) {
			s.Faults = &echo.Faults{Rate: rate}
		})
		c := dialer.conn(t)
		c.SetDeadline(time.Now().Add(ioTimeout))
		sent := randomBytes(11, size)
		start := time.Now()
		go func() {
			c.Write(sent)
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
		got, err := readAll(c)
		if err != nil || !bytes.Equal(got, sent) {
			t.Fatalf("read %d bytes, %v; want the %d sent", len(got), err, size)
		}
		if d := time.Since(start); d < least {
			t.Errorf("%d bytes at %d/s took %v, want at least %v", size, rate, d, least)
		}
	}
	for _, ft := range faultTargets() {
		if strings.Contains(ft.name, "logged") {
			continue // 128-byte chunks: slow enough as it is
		}
		t.Run(ft.name, func(t *testing.T) { run(t, ft, 64<<10, 128<<10, 400*time.Millisecond) })
	}
	t.Run("1MiB", func(t *testing.T) {
		if testing.Short() {
			t.Skip("3.5 s")
		}
		run(t, faultTargets()[0], 1<<20, 256<<10, 3500*time.Millisecond)
	})
}

// TestFaultsOffCostNothing: a Server without Faults has no stage at all;
// one with faults that inject none (zero, or a share alone) has the stage,
// for SetFaults, and echoes plainly.
func TestFaultsOffCostNothing(t *testing.T) {
	for _, f := range []*echo.Faults{nil, {}, {Share: 0.5}} {
		srv := &echo.Server{Faults: f}
		addr := startQuiet(t, srv)
		roundTrip(t, dial(t, addr), []byte("plain"))
		if got, want := echo.HasStages(srv), f != nil; got != want {
			t.Errorf("Faults %+v: the server has stages: %v, want %v", f, got, want)
		}
	}
}

// TestSetFaults: SetFaults changes the faults of the connections opened
// afterwards, on both engines; those open keep theirs. A bad Faults, or a
// server started without Faults, changes nothing.
func TestSetFaults(t *testing.T) {
	for _, v := range variants[:2] { // quiet: loops and goroutines
		t.Run(v.name, func(t *testing.T) {
			addr, srv := startVariant(t, v, nil, func(s *echo.Server) { s.Faults = &echo.Faults{} })
			before := dial(t, addr)
			roundTrip(t, before, []byte("plain"))
			if err := srv.SetFaults(&echo.Faults{ResetAfter: echo.FaultAfter{Bytes: 2}}); err != nil {
				t.Fatal(err)
			}
			if err := srv.SetFaults(&echo.Faults{Corrupt: 2}); !errors.Is(err, echo.ErrInvalidFault) {
				t.Fatalf("SetFaults(Corrupt 2) = %v, want ErrInvalidFault", err)
			}
			after := dial(t, addr)
			after.SetDeadline(time.Now().Add(ioTimeout))
			after.Write([]byte("abcd"))
			if got, err := readAll(after); len(got) > 2 || !isReset(err) {
				t.Fatalf("after SetFaults: read %q, %v; want at most 2 bytes, then a reset", got, err)
			}
			roundTrip(t, before, []byte("still plain"))
			if err := srv.SetFaults(nil); err != nil {
				t.Fatal(err)
			}
			roundTrip(t, dial(t, addr), []byte("plain again"))
		})
	}
	srv := &echo.Server{}
	startQuiet(t, srv)
	if err := srv.SetFaults(&echo.Faults{Delay: time.Second}); !errors.Is(err, echo.ErrInvalidFault) {
		t.Errorf("SetFaults on a server started without Faults = %v, want ErrInvalidFault", err)
	}
}

// startQuiet serves srv on 127.0.0.1 until the test ends.
func startQuiet(t *testing.T, srv *echo.Server) string {
	t.Helper()
	ln := listenLocal(t)
	serve(t, srv, ln)
	return ln.Addr().String()
}

// TestClientTellsFaultsApart: Client.Send reports a reset partway as a
// network error that says how much was echoed (and is ECONNRESET), a
// flipped bit and an echo cut short by a FIN as a *MismatchError.
func TestClientTellsFaultsApart(t *testing.T) {
	msg := randomBytes(12, 4096)
	cases := []struct {
		name  string
		f     echo.Faults
		check func(t *testing.T, err error)
	}{
		{"reset", echo.Faults{ResetAfter: echo.FaultAfter{Bytes: 1024}}, func(t *testing.T, err error) {
			var ee *echo.ExchangeError
			if !errors.As(err, &ee) || !errors.Is(err, syscall.ECONNRESET) || !strings.HasSuffix(err.Error(), ": connection reset by the server after 1024 of 4096 bytes echoed") {
				t.Errorf("Send = %v; want an *ExchangeError saying that 1024 of the 4096 bytes were echoed", err)
			}
		}},
		{"corrupt", echo.Faults{Corrupt: 1}, func(t *testing.T, err error) {
			var me *echo.MismatchError
			if !errors.As(err, &me) || me.Short || me.Extra || bits.OnesCount8(me.Sent^me.Received) != 1 || msg[me.Offset] != me.Sent {
				t.Errorf("Send = %v; want a *MismatchError at a byte with one bit flipped", err)
			}
		}},
		{"close", echo.Faults{CloseAfter: echo.FaultAfter{Bytes: 1024}}, func(t *testing.T, err error) {
			var me *echo.MismatchError
			if !errors.As(err, &me) || !me.Short || me.Offset != 1024 {
				t.Errorf("Send = %v; want a *MismatchError, short at 1024", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &echo.Server{Faults: &tc.f}
			addr := startQuiet(t, srv)
			_, err := (&echo.Client{Addr: addr, Timeout: ioTimeout}).Send(t.Context(), [][]byte{msg}, nil)
			tc.check(t, err)
		})
	}
}

// TestFaultStallEndsWithFINAtShutdown: a stalled connection whose peer
// sent more than the server read ends at Shutdown's deadline with a FIN,
// as every connection does, on every engine: it was closed with the bytes
// unread, which the kernel answers with a reset.
func TestFaultStallEndsWithFINAtShutdown(t *testing.T) {
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			var srv *echo.Server
			dial := ft.start(t, nil, func(s *echo.Server) {
				s.Faults = &echo.Faults{StallAfter: echo.FaultAfter{Bytes: 10}}
				srv = s
			})
			c, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioTimeout))
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				c.Write(make([]byte, 256<<10)) // more than the server reads before it stalls
			}()
			if _, err := io.ReadFull(c, make([]byte, 10)); err != nil {
				t.Fatalf("the echo before the stall: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(ctx) }()
			n, err := io.Copy(io.Discard, c)
			if err != nil || n != 0 {
				t.Errorf("after the stall: %d more bytes, then %v; want the end of the stream, no reset", n, err)
			}
			<-shut
			<-wrote
		})
	}
}

// TestFaultCutLogsSent: with data logged, the part of an echo that went
// before a fault cut it is in the transcript, as a "sent" line.
func TestFaultCutLogsSent(t *testing.T) {
	const msg, after = "hello world 12345", 10
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			var logs syncBuffer
			dialer := ft.start(t, &logs, func(s *echo.Server) {
				s.Logger = s.Logger.Level(zerolog.DebugLevel)
				s.Faults = &echo.Faults{CloseAfter: echo.FaultAfter{Bytes: after}}
			})
			c := dialer.conn(t)
			c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			if got, err := readAll(c); err != nil || string(got) != msg[:after] {
				t.Fatalf("read %q, %v; want %q, then the end of the stream", got, err, msg[:after])
			}
			c.Close()
			waitLog(t, &logs, `"closing"`)
			// The lines show the chunks read (BufferSize at most), all
			// ASCII: b'...'.
			var sent string
			for _, l := range parseLog(t, logs.String()) {
				if q, ok := strings.CutPrefix(l.Message, "sent b'"); ok {
					sent += strings.TrimSuffix(q, "'")
				}
			}
			if sent != msg[:after] {
				t.Errorf("the sent lines show %q, want %q", sent, msg[:after])
			}
		})
	}
}

// TestFaultAfterBytesHoldsAtShutdown: Shutdown's deadline ends the waits
// of a sliced echo, not the byte counts of the endings: an echo owed then
// is written at once up to the count, and the ending acts there, whether
// the count falls in the chunk held at the deadline, in bytes still unread
// in the socket then, or at the very end of the held chunk. The whole echo
// used to go, and the connection to end cleanly.
func TestFaultAfterBytesHoldsAtShutdown(t *testing.T) {
	sent := randomBytes(9, 4000)
	const slice = 100
	for _, ft := range faultTargets() {
		for _, e := range []struct {
			name, verb string
			set        func(*echo.Faults, echo.FaultAfter)
			reset      bool // at most after bytes, then a reset
		}{
			{"close", "closing", func(f *echo.Faults, a echo.FaultAfter) { f.CloseAfter = a }, false},
			{"stall", "stalling", func(f *echo.Faults, a echo.FaultAfter) { f.StallAfter = a }, false},
			{"reset", "reset", func(f *echo.Faults, a echo.FaultAfter) { f.ResetAfter = a }, true},
		} {
			for _, w := range []struct {
				name          string
				after         int
				first, second int // bytes written before the first slice is read, and after
			}{
				{"held", 1000, 4000, 0},
				{"queued", 1000, 500, 3500},
				{"at the chunk's end", 500, 500, 0},
			} {
				if w.second > 0 && ft.unqueued {
					continue // what waits unread at the deadline is not echoed there
				}
				t.Run(ft.name+"/"+e.name+"/"+w.name, func(t *testing.T) {
					var logs syncBuffer
					var srv *echo.Server
					dial := ft.start(t, &logs, func(s *echo.Server) {
						f := &echo.Faults{Slice: slice, SliceDelay: time.Hour}
						e.set(f, echo.FaultAfter{Bytes: int64(w.after)})
						s.Faults, srv = f, s
					})
					c := dial.conn(t)
					c.SetDeadline(time.Now().Add(ioTimeout))
					if _, err := c.Write(sent[:w.first]); err != nil {
						t.Fatal(err)
					}
					first := make([]byte, slice)
					if _, err := io.ReadFull(c, first); err != nil {
						t.Fatalf("the first slice: %v", err)
					}
					if w.second > 0 {
						// Unread by the server, which holds the first chunk.
						if _, err := c.Write(sent[w.first : w.first+w.second]); err != nil {
							t.Fatal(err)
						}
					}
					done := make(chan error, 1)
					go func() { done <- shutdown(srv, 50*time.Millisecond) }()
					rest, err := readAll(c)
					got := append(first, rest...)
					c.Close() // ends the server's lingering close
					switch {
					case !bytes.Equal(got, sent[:min(len(got), len(sent))]):
						t.Fatalf("read %d bytes that are not the start of those sent", len(got))
					case e.reset && (len(got) > w.after || !isReset(err) && !(ft.noRST && err == nil)):
						t.Fatalf("read %d bytes, then %v; want at most %d, then a reset", len(got), err, w.after)
					case !e.reset && (len(got) != w.after || err != nil):
						t.Fatalf("read %d bytes, then %v; want exactly %d, then the end of the stream", len(got), err, w.after)
					}
					select {
					case <-done:
					case <-time.After(ioTimeout):
						t.Fatal("Shutdown did not return")
					}
					waitLog(t, &logs, "fault: "+e.verb)
					if strings.Contains(logs.String(), "not written") {
						t.Errorf("the fault's ending was logged as an echo lost:\n%s", logs.String())
					}
				})
			}
		}
	}
}

// TestClientReadsEchoBeforeReset: the echo that came before a reset is
// read and counted, whichever of the client's write and read sees the
// reset first; a write that saw it first used to stop the read, so that
// the echo was lost and the reset said to come before any echo.
func TestClientReadsEchoBeforeReset(t *testing.T) {
	msg := randomBytes(13, 4096)
	srv := &echo.Server{Faults: &echo.Faults{ResetAfter: echo.FaultAfter{Bytes: 1024}}}
	addr := startQuiet(t, srv)
	for i := range 40 {
		var echoed bytes.Buffer
		res, err := (&echo.Client{Addr: addr, Timeout: ioTimeout}).SendStream(t.Context(), bytes.NewReader(msg), &echoed)
		if !errors.Is(err, syscall.ECONNRESET) || res.Received != 1024 || !bytes.Equal(echoed.Bytes(), msg[:1024]) {
			t.Fatalf("exchange %d: %d bytes echoed (%d written out), error %v; want the first 1024 bytes, then the reset", i, res.Received, echoed.Len(), err)
		}
	}
}

// TestFaultRefuseBeforeGreeting: a refused connection is reset before the
// open stages write anything, on every engine.
func TestFaultRefuseBeforeGreeting(t *testing.T) {
	for _, ft := range faultTargets() {
		t.Run(ft.name, func(t *testing.T) {
			dialer := ft.start(t, nil, func(s *echo.Server) {
				s.Greeting = "hello"
				s.Faults = &echo.Faults{Refuse: 1}
			})
			c, err := dialer()
			if err != nil {
				if isReset(err) {
					return // reset before connect returned
				}
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("x"))
			got, err := readAll(c)
			if len(got) != 0 || err != nil && !isReset(err) && !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("read %q, %v; want nothing, then a reset or the end of the stream", got, err)
			}
		})
	}
}

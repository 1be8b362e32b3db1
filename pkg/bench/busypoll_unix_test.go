//go:build unix

package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"

	"github.com/echoctl/echoctl/pkg/echo"
)

// tcpPair returns the two ends of a loopback TCP connection, the client's
// reads polling for up to window.
func tcpPair(t *testing.T, window time.Duration) (client net.Conn, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	client = pollReads(c, window)
	if _, ok := client.(*busyConn); !ok {
		t.Fatalf("pollReads(%T, %v) = %T, want a *busyConn", c, window, client)
	}
	return client, s.(*net.TCPConn)
}

// threadCPU returns the CPU time the calling thread has used.
func threadCPU(t *testing.T) time.Duration {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// readAfter writes p to w after delay and returns what r.Read gets, how
// long it took, and the CPU the read used meanwhile: its thread's, to
// which it is locked, so that the rest of the process (the writer, the
// garbage collector, the race detector) does not count.
func readAfter(t *testing.T, r net.Conn, w net.Conn, p []byte, delay time.Duration) (got []byte, took, cpu time.Duration, err error) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	go func() {
		time.Sleep(delay)
		w.Write(p)
	}()
	buf := make([]byte, 64)
	start, cpu0 := time.Now(), threadCPU(t)
	n, err := r.Read(buf)
	return buf[:n], time.Since(start), threadCPU(t) - cpu0, err
}

// TestBusyConnPolls: a read that waits for less than the window looks for
// the data on the CPU the whole time, and gets it.
func TestBusyConnPolls(t *testing.T) {
	c, s := tcpPair(t, time.Second)
	const delay = 100 * time.Millisecond
	got, took, cpu, err := readAfter(t, c, s, []byte("polled"), delay)
	if err != nil || string(got) != "polled" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if cpu < delay/10 {
		t.Errorf("the read took %v and its thread %v of CPU: it did not poll", took, cpu)
	}
}

// TestBusyConnWaitsAfterWindow: a read that waits longer than the window
// stops polling and waits on the runtime's poller.
func TestBusyConnWaitsAfterWindow(t *testing.T) {
	c, s := tcpPair(t, 5*time.Millisecond)
	const delay = 400 * time.Millisecond
	got, took, cpu, err := readAfter(t, c, s, []byte("waited"), delay)
	if err != nil || string(got) != "waited" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if cpu > delay/4 {
		t.Errorf("the read took %v and its thread %v of CPU: it polled past its window", took, cpu)
	}
}

// TestBusyConnEnds: deadlines, end of stream and a reset end a polling
// read as they end any read of a net.Conn.
func TestBusyConnEnds(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		c, _ := tcpPair(t, MaxBusyPoll)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		start := time.Now()
		_, err := c.Read(make([]byte, 8))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read = %v, want a deadline error", err)
		}
		if took := time.Since(start); took > MaxBusyPoll/2 {
			t.Errorf("Read returned after %v: the deadline did not hold while it polled", took)
		}
	})
	t.Run("end of stream", func(t *testing.T) {
		c, s := tcpPair(t, MaxBusyPoll)
		s.CloseWrite()
		if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Errorf("Read = %d, %v; want 0, io.EOF", n, err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		c, s := tcpPair(t, MaxBusyPoll)
		s.SetLinger(0)
		s.Close()
		_, err := c.Read(make([]byte, 8))
		if classify(err) != KindReset {
			t.Errorf("Read = %v, classified %v; want a reset", err, classify(err))
		}
	})
	t.Run("half-close", func(t *testing.T) {
		c, s := tcpPair(t, MaxBusyPoll)
		if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Errorf("the peer read %d, %v; want 0, io.EOF after CloseWrite", n, err)
		}
	})
}

// TestPollReadsWithProxyHeader: a connection that sends a PROXY header
// first polls its reads too, and taking its raw connection for that sends
// the header before anything else.
func TestPollReadsWithProxyHeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p, err := echo.ParseSendProxy("v2", "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := (&echo.Client{Addr: ln.Addr().String(), Proxy: p}).DialContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	client := pollReads(c, time.Millisecond)
	if _, ok := client.(*busyConn); !ok {
		t.Fatalf("pollReads(%T) = %T, want a *busyConn", c, client)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := proxyproto.Read(bufio.NewReader(s)); err != nil {
		t.Fatalf("the server read no PROXY header: %v", err)
	}
}

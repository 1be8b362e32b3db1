//go:build unix

package bench

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// busyConn is a connection whose reads look for data without waiting on
// the runtime's poller for up to window: a non-blocking read, a yield to
// the other goroutines, and again, until bytes come, the connection fails
// or window has passed; then it reads as any net.Conn does. A goroutine
// waiting on the poller is woken by the runtime, which, on a virtual
// machine whose idle CPU has halted, takes tens of microseconds that
// would count in every round trip the run measures.
type busyConn struct {
	net.Conn // TCP: a *net.TCPConn, or echo.Client's with a PROXY header
	rc       syscall.RawConn
	window   time.Duration
}

// halfCloser is a TCP connection as pollReads takes it.
type halfCloser interface {
	net.Conn
	syscall.Conn
	CloseWrite() error
}

// CloseWrite half-closes the connection.
func (c *busyConn) CloseWrite() error { return c.Conn.(halfCloser).CloseWrite() }

// pollReads returns c as a busyConn that polls for up to window, or c
// itself if window is zero or c is not a TCP connection. (Taking the raw
// connection of one with a PROXY header sends the header at once.)
func pollReads(c net.Conn, window time.Duration) net.Conn {
	hc, ok := c.(halfCloser)
	if _, tcp := c.LocalAddr().(*net.TCPAddr); window <= 0 || !ok || !tcp {
		return c
	}
	rc, err := hc.SyscallConn()
	if err != nil {
		return c
	}
	return &busyConn{Conn: c, rc: rc, window: window}
}

// Read polls for up to the window, then reads as c.Conn does. Deadlines
// hold throughout: the raw read fails once the read deadline has passed.
func (c *busyConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.Conn.Read(p)
	}
	var until time.Time
	for {
		var n int
		var errno error
		err := c.rc.Read(func(fd uintptr) bool {
			n, errno = syscall.Read(int(fd), p)
			return true // never wait on the poller here
		})
		switch {
		case err != nil:
			return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
		case errno == nil && n == 0:
			return 0, io.EOF
		case errno == nil:
			return n, nil
		case errno == syscall.EINTR:
			continue
		case !errors.Is(errno, syscall.EAGAIN):
			return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
		}
		now := time.Now()
		if until.IsZero() {
			until = now.Add(c.window)
		} else if now.After(until) {
			return c.Conn.Read(p)
		}
		runtime.Gosched()
	}
}

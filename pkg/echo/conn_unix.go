//go:build unix

package echo

import (
	"io"
	"os"
	"syscall"
)

// echoFast echoes without logging data. It waits for the socket to become
// readable holding no buffer, takes a pooled one only when there is data to
// read, and gives it back once the data is written: an idle connection
// holds nothing but its goroutine and socket, and on Linux not even the
// goroutine once it is parked (park_linux.go); then it returns errParked.
// Connections that do not expose their file descriptor (TLS, wrappers) use
// echoCopy.
func (c *conn) echoFast() error {
	sc, ok := c.rwc.(syscall.Conn)
	if !ok {
		return c.echoCopy()
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c.echoCopy()
	}
	parkable := c.mayPark()
	var (
		bufp *[]byte
		n    int
		rerr error
	)
	read := func(fd uintptr) bool {
		bufp = fastBuffers.Get().(*[]byte)
		for {
			n, rerr = syscall.Read(int(fd), *bufp)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			fastBuffers.Put(bufp)
			return false
		}
		return true
	}
	for {
		c.armRead()
		if err := raw.Read(read); err != nil {
			if parkable && c.parkRequested(err) {
				if c.park(raw) {
					return errParked
				}
				continue
			}
			return &opError{"read", err}
		}
		if parkable {
			c.countRead()
		}
		switch {
		case rerr != nil:
			fastBuffers.Put(bufp)
			return &opError{"read", os.NewSyscallError("read", rerr)}
		case n == 0:
			fastBuffers.Put(bufp)
			return &opError{"read", io.EOF}
		}
		werr := c.write((*bufp)[:n], c.received(n))
		fastBuffers.Put(bufp)
		if werr != nil {
			return werr
		}
	}
}

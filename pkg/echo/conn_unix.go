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
// holds nothing but its goroutine and socket. Connections that do not
// expose their file descriptor (TLS, wrappers) use echoCopy.
func (c *conn) echoFast() error {
	sc, ok := c.rwc.(syscall.Conn)
	if !ok {
		return c.echoCopy()
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c.echoCopy()
	}
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
			return &opError{"read", err}
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

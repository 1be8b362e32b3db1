package echo

import (
	"crypto/tls"
	"syscall"

	"golang.org/x/sys/unix"
)

// NotSentLowats returns TCP_NOTSENT_LOWAT of the socket of each
// connection s serves (-1: the system's, unlimited), -2 where it cannot
// be read (a wrapper, a Unix socket). For tests in package echo_test.
func NotSentLowats(s *Server) []int {
	var out []int
	s.forEachConn(func(c *conn) {
		v, fd := -2, -1
		get := func(f uintptr) {
			if n, err := unix.GetsockoptInt(int(f), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT); err == nil {
				v = n
			}
		}
		switch io := c.io.(type) {
		case *loopConn:
			fd = int(io.fd)
			get(uintptr(fd))
		case *goConn:
			nc := io.rwc
			if tc, ok := nc.(*tls.Conn); ok {
				nc = tc.NetConn()
			}
			if sc, ok := nc.(syscall.Conn); ok {
				if rc, err := sc.SyscallConn(); err == nil {
					rc.Control(get)
				}
			}
		}
		out = append(out, v)
	})
	return out
}

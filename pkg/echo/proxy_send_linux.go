package echo

import (
	"net"

	"golang.org/x/sys/unix"
)

// writeHeader writes a PROXY header b first on conn. When more follows at
// once (the caller writes next), a TCP connection holds it back
// (MSG_MORE) to leave in one segment with those bytes, as HAProxy sends
// its header with the client's first bytes when it has them: the backend
// then reads both at once, as it would from the balancer.
func writeHeader(conn net.Conn, b []byte, more bool) error {
	tc, ok := conn.(*net.TCPConn)
	if !more || !ok {
		_, err := conn.Write(b)
		return err
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n, err := unix.SendmsgN(int(fd), b, nil, nil, unix.MSG_MORE)
			switch {
			case err == unix.EAGAIN:
				return false // wait until writable, within the deadline
			case err == unix.EINTR:
				continue
			case err != nil:
				serr = &net.OpError{Op: "write", Net: "tcp", Source: tc.LocalAddr(), Addr: tc.RemoteAddr(), Err: err}
				return true
			}
			b = b[n:]
		}
		return true
	}); err != nil {
		return err
	}
	return serr
}

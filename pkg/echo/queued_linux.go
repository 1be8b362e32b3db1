package echo

import (
	"crypto/tls"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// queuedBytes returns how many bytes wait in c's socket receive queue,
// read by no one yet (SIOCINQ), or 0 if that cannot be known (TLS, a
// wrapper, an error).
func queuedBytes(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) { n = queuedBytesFD(int(fd)) })
	return n
}

// sendQueued returns how many bytes wait in rc's send queue that the peer
// has not yet acknowledged (SIOCOUTQ; on a Unix socket, not yet read);
// false if that cannot be known.
func sendQueued(rc syscall.RawConn) (n int, ok bool) {
	var err error
	if cerr := rc.Control(func(fd uintptr) { n, err = sendQueuedFD(int(fd)) }); cerr != nil {
		return 0, false
	}
	return n, err == nil
}

// sendQueuedFD is sendQueued for a raw socket.
func sendQueuedFD(fd int) (int, error) { return unix.IoctlGetInt(fd, unix.SIOCOUTQ) }

// queuedBytesFD is queuedBytes for a raw socket.
func queuedBytesFD(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// sendOneByOne has c's socket (below TLS) take a write only once what was
// written before has left it, for a slicing stage (slicingPacer); it does
// nothing on a connection it cannot reach the socket of (a wrapper).
func sendOneByOne(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { sendOneByOneFD(int(fd)) })
		}
	}
}

// sendOneByOneFD is sendOneByOne for a raw socket: TCP_NOTSENT_LOWAT 1,
// with which a write waits (EAGAIN, then EPOLLOUT) while any byte written
// before is unsent. A Unix socket has no such option and needs none: its
// send buffer is full after a few hundred pieces.
func sendOneByOneFD(fd int) {
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 1)
}

package echo

import (
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

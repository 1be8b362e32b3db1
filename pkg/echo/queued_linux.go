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

// queuedBytesFD is queuedBytes for a raw socket.
func queuedBytesFD(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

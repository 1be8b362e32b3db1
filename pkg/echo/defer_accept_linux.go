package echo

import (
	"os"

	"golang.org/x/sys/unix"
)

// deferAcceptAvailable is whether this system has TCP_DEFER_ACCEPT.
const deferAcceptAvailable = true

// setDeferAccept makes the listening socket fd hand over a connection at
// its first byte (defersAccept), or at its handshake.
func setDeferAccept(fd uintptr, on bool) error {
	secs := 0
	if on {
		secs = deferAcceptSeconds
	}
	if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs); err != nil {
		return os.NewSyscallError("setsockopt TCP_DEFER_ACCEPT", err)
	}
	return nil
}

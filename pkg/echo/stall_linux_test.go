package echo_test

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// waitPeerStalled waits until c's peer, an echo server whose write back to
// c is stuck because c does not read, has stopped reading from c: until it
// advertises a zero receive window, its receive queue full. Nothing
// announces that, so it looks at the socket (TCP_INFO) until it is so.
func waitPeerStalled(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the server to stop reading (a zero receive window)", func() bool {
		var info *unix.TCPInfo
		var ierr error
		if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
			t.Fatal(err)
		}
		if ierr != nil {
			t.Fatal(ierr)
		}
		return info.Snd_wnd == 0
	})
}

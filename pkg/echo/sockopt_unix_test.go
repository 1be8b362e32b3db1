//go:build unix

package echo_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// listenSmallSendBuffer listens on 127.0.0.1 with a small send buffer,
// which accepted connections inherit: the server's writes stall soon after
// its peer stops reading, even when it echoes slowly (7-byte chunks under
// the race detector) and the kernel would otherwise let it queue
// megabytes.
func listenSmallSendBuffer(t *testing.T) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10)
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

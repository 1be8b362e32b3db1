//go:build !linux

package echo_test

import (
	"net"
	"testing"
)

// waitPeerStalled skips the test: seeing that the peer has stopped
// reading takes TCP_INFO's send window (stall_linux_test.go).
func waitPeerStalled(t *testing.T, _ *net.TCPConn) {
	t.Helper()
	t.Skip("seeing that the server has stopped reading needs Linux's TCP_INFO")
}

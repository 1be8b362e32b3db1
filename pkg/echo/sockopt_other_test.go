//go:build !unix

package echo_test

import (
	"net"
	"testing"
)

// listenSmallSendBuffer is listenLocal where socket options are not set
// through a file descriptor.
func listenSmallSendBuffer(t *testing.T) net.Listener { return listenLocal(t) }

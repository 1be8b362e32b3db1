//go:build !linux

package echo

import (
	"net"
	"syscall"
)

// queuedBytes returns 0: how many bytes wait in a socket's receive queue
// is read only on Linux (queued_linux.go).
func queuedBytes(net.Conn) int { return 0 }

// sendQueued returns false: how many bytes wait in a socket's send queue
// is read only on Linux (queued_linux.go).
func sendQueued(syscall.RawConn) (int, bool) { return 0, false }

// sendOneByOne does nothing: a slicing stage's pieces are held back for
// a peer that does not read only on Linux (queued_linux.go).
func sendOneByOne(net.Conn) {}

//go:build !unix

package bench

import (
	"net"
	"time"
)

// pollReads returns c: reads poll only on Unix (busypoll_unix.go).
func pollReads(c net.Conn, _ time.Duration) net.Conn { return c }

//go:build !linux

package echo

import "net"

// writeHeader writes a PROXY header b first on conn (more is for Linux's
// MSG_MORE: see proxy_send_linux.go).
func writeHeader(conn net.Conn, b []byte, more bool) error {
	_, err := conn.Write(b)
	return err
}

//go:build !linux

package echo

import "net"

// Event loops serve plain TCP only on Linux (loop_linux.go).

type loops struct{}

func (s *Server) loopsFor(net.Listener) (net.Listener, func(string) error, bool) {
	return nil, nil, false
}
func (ls *loops) stopAll()      {}
func (ls *loops) closeAll()     {}
func (ls *loops) close()        {}
func (c *conn) loopOwned() bool { return false }

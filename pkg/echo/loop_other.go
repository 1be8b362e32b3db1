//go:build !linux

package echo

import (
	"errors"
	"net"
)

// Event loops serve connections only on Linux (loop_linux.go, engineFor).

const loopsAvailable = false

type loops struct{}

func (s *Server) loopListen(net.Listener) (net.Listener, func(*listenerConf) error, error) {
	return nil, nil, errors.ErrUnsupported
}
func (ls *loops) close() {}

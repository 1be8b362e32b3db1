//go:build unix

package bench

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// stillOpen reports, without blocking and without consuming anything,
// whether the server has closed or reset the idle connection c, or sent
// something it was not asked for. It peeks at the socket directly: c's
// deadline has passed by the time it is called.
func stillOpen(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var perr error
	if err := raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}); err != nil {
		return err
	}
	switch {
	case errors.Is(perr, syscall.EAGAIN):
		return nil
	case perr != nil:
		return os.NewSyscallError("recvfrom", perr)
	case n == 0:
		return errors.New("the server closed an idle connection")
	default:
		return errors.New("the server sent data on an idle connection that had sent nothing more")
	}
}

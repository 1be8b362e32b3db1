package echo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// DefaultUnixMode is the permission of a Unix socket file when
// Server.UnixMode is zero: read and write for the owner and the group.
const DefaultUnixMode os.FileMode = 0o660

// staleProbeTimeout bounds the connect that tells a stale socket file from
// a live one.
const staleProbeTimeout = time.Second

// listenUnix listens on a Unix stream socket at path. A socket file that
// nobody listens on (connect is refused: its server died without removing
// it) is removed first; a socket someone listens on, or a path that is not
// a socket, is an error and is left alone. The socket file is given
// s.UnixMode and is removed when the listener closes.
func (s *Server) listenUnix(ctx context.Context, raw, path string) (net.Listener, error) {
	stale, err := staleSocket(ctx, path)
	if err != nil {
		return nil, &listenError{addr: raw, err: err}
	}
	if stale {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, &listenError{addr: raw, err: fmt.Errorf("remove stale socket: %w", err)}
		}
		s.Logger.Info().Str("logger", "main").Str("path", path).Msgf("removed stale socket %s", path)
	}
	ln, err := s.ListenConfig.Listen(ctx, "unix", path)
	if err != nil {
		return nil, &listenError{addr: raw, err: err}
	}
	mode := s.UnixMode
	if mode == 0 {
		mode = DefaultUnixMode
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		ln.Close()
		return nil, &listenError{addr: raw, err: err}
	}
	return ln, nil
}

// staleSocket reports whether path is a socket file that nobody listens
// on. It is false, with no error, when nothing is at path.
func staleSocket(ctx context.Context, path string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return false, &pathError{path: path, what: "exists and is not a socket (" + describeMode(fi.Mode()) + "); not removing it", err: ErrNotSocket}
	}
	d := net.Dialer{Timeout: staleProbeTimeout}
	c, err := d.DialContext(ctx, "unix", path)
	switch {
	case err == nil:
		c.Close()
		return false, &pathError{path: path, what: "is in use: another server is listening on it", err: ErrSocketInUse}
	case errors.Is(err, syscall.ECONNREFUSED):
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("check socket %s: %w", path, rootCause(err))
}

// describeMode names the kind of file a mode describes.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// pathError reports a socket path that cannot be used; it wraps one of the
// sentinels ErrNotSocket and ErrSocketInUse.
type pathError struct {
	path string
	what string
	err  error
}

func (e *pathError) Error() string { return e.path + " " + e.what }
func (e *pathError) Unwrap() error { return e.err }

// listenError reports a failure to listen on addr.
type listenError struct {
	addr string
	err  error
}

func (e *listenError) Error() string { return "echo: listen " + e.addr + ": " + e.err.Error() }
func (e *listenError) Unwrap() error { return e.err }

// unixConnName returns the logger name of the n-th connection accepted on a
// Unix socket: "echo_unix_{n}", since a Unix peer has no address or port.
func unixConnName(n uint64) string { return "echo_unix_" + strconv.FormatUint(n, 10) }

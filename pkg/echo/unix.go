package echo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
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
// a socket, is an error and is left alone. The socket file appears at path
// with s.UnixMode already set (bindUnix), and is removed when the listener
// closes if it is still the one this server made (unixListener.Close).
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
	mode := s.UnixMode
	if mode == 0 {
		mode = DefaultUnixMode
	}
	ln, err := s.bindUnix(ctx, path, mode.Perm())
	if err != nil {
		return nil, &listenError{addr: raw, err: err}
	}
	return ln, nil
}

// maxBindPath is the longest path bind takes on this system: sun_path
// less its terminating NUL (maxUnixPath is the shortest of them, which
// addresses are held to).
func maxBindPath() int {
	if runtime.GOOS == "linux" {
		return 107
	}
	return maxUnixPath
}

// bindUnix binds a Unix stream socket at path whose file has mode perm from
// the moment it appears there. A socket file takes the process's umask
// when bind creates it (0777 under umask 000), and a chmod after bind
// leaves a moment in which anyone may connect. So the socket is bound in a
// fresh directory beside path that only the owner may enter, chmodded
// there, and hard-linked to path, which fails rather than replace what
// may have appeared at path since the stale-socket check (rename would
// replace it; it is the fallback on file systems without hard links).
// Changing umask instead would change it for the whole process, and for
// every goroutine creating files meanwhile.
func (s *Server) bindUnix(ctx context.Context, path string, perm fs.FileMode) (net.Listener, error) {
	dir, err := unixTempDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "s")
	defer func() {
		// Unlinked one by one, not by os.RemoveAll, which reads the
		// directory: one the server may write and enter but not read
		// (0730) was left behind at every start, a link to the socket in
		// it.
		err := os.Remove(tmp)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			err = os.Remove(dir)
		}
		if err != nil {
			s.Logger.Warn().Str("logger", "main").Err(err).Msgf("unix socket %s: could not remove the directory it was made in, %s: %v", path, dir, err)
		}
	}()
	ln, err := s.ListenConfig.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, err
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok { // ListenConfig always makes one: keep the contract anyway
		ln.Close()
		return nil, fmt.Errorf("listen unix %s: unexpected listener %T", path, ln)
	}
	// Closing unlinks only what this server made (unixListener.Close),
	// never whatever is at the bound path then.
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ul.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return fail(err)
	}
	made, err := os.Lstat(tmp)
	if err != nil {
		return fail(err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if _, serr := staleSocket(ctx, path); serr != nil {
				return fail(serr)
			}
			return fail(&pathError{path: path, what: "appeared while the socket was being made; not replacing it", err: fs.ErrExist})
		}
		if _, lerr := os.Lstat(path); !errors.Is(lerr, fs.ErrNotExist) {
			return fail(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fail(err)
		}
	}
	return &unixListener{UnixListener: ul, addr: &net.UnixAddr{Name: path, Net: "unix"}, made: made}, nil
}

// unixTempDir makes a directory only its owner may enter, in dir, with a
// name short enough that a socket named "s" in it fits in sun_path
// whenever one at the longest address path in dir would.
func unixTempDir(dir string) (string, error) {
	n := min(maxBindPath()-len(dir)-len("//s"), 13)
	if n < 2 {
		return "", fmt.Errorf("socket directory %s: path too long for a temporary socket beside it", dir)
	}
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	name := make([]byte, n)
	name[0] = '.'
	var err error
	for range 100 {
		for i := 1; i < n; i++ {
			name[i] = letters[rand.IntN(len(letters))]
		}
		tmp := filepath.Join(dir, string(name))
		if err = os.Mkdir(tmp, 0o700); err == nil {
			return tmp, nil
		}
		if !errors.Is(err, fs.ErrExist) { // said of dir: the name made here is no one's
			what := "cannot hold the socket: " + rootCause(err).Error()
			if errors.Is(err, fs.ErrNotExist) {
				what = "does not exist: make it first"
			}
			return "", &pathError{path: "socket directory " + dir, what: what, err: err}
		}
	}
	return "", err
}

// unixListener is a Unix stream listener whose socket was bound under a
// temporary name (bindUnix): it gives its address, and its connections'
// local address, as the path clients connect to, and on Close removes the
// socket file at that path only if it is still the one it made.
type unixListener struct {
	*net.UnixListener
	addr      *net.UnixAddr
	made      fs.FileInfo // the socket file as bound: its device and inode
	closeOnce sync.Once
}

// Addr returns the path clients connect to.
func (l *unixListener) Addr() net.Addr { return l.addr }

// Accept waits for the next connection.
func (l *unixListener) Accept() (net.Conn, error) {
	c, err := l.UnixListener.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return &unixConn{UnixConn: c, local: l.addr}, nil
}

// Close closes the listener and removes the socket file, unless what is at
// its path now is not the socket this listener made: a file put there
// since, or another server's socket, is left alone.
func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.closeOnce.Do(func() {
		if fi, lerr := os.Lstat(l.addr.Name); lerr == nil && os.SameFile(fi, l.made) {
			os.Remove(l.addr.Name)
		}
	})
	return err
}

// unixConn is a connection accepted by a unixListener: its local address
// is the listener's path rather than the temporary one it was bound at.
type unixConn struct {
	*net.UnixConn
	local net.Addr
}

// LocalAddr returns the socket's path.
func (c *unixConn) LocalAddr() net.Addr { return c.local }

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
// sentinels ErrNotSocket and ErrSocketInUse, or fs.ErrExist.
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

// notSocket makes err, a failure to connect to the Unix socket at path,
// say so when path is no socket at all: the kernel says "connection
// refused" for a regular file or a directory, as for a socket no server
// listens on. The error still wraps err (a refusal) and ErrNotSocket.
func notSocket(path string, err error) error {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	fi, serr := os.Stat(path)
	if serr != nil || fi.Mode()&fs.ModeSocket != 0 {
		return err
	}
	return &pathError{path: path, what: "is not a socket (" + describeMode(fi.Mode()) + "): no server listens there", err: errors.Join(ErrNotSocket, err)}
}

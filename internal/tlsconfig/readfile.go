package tlsconfig

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxFileSize bounds what is read of a PEM file. A certificate chain or a
// key takes a few KiB, a system's whole CA bundle about 200 KiB; a path to
// something huge or endless (/dev/zero) fails rather than filling memory.
const maxFileSize = 4 << 20

// readFile reads a certificate, key or CA file: the one place this package
// reads files. It reads only regular files, of at most maxFileSize bytes: a
// FIFO would block the read (and with it a SIGHUP reload, and then
// shutdown) until something writes it, and a device may never end. The
// path is checked with Stat before it is opened, the file is opened with
// O_NONBLOCK so that a FIFO put in its place in between cannot block the
// open, and the open file is checked again.
func readFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := checkFile(fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkFile(fi); err != nil {
		return nil, err
	}
	// The file may grow after the Stat: read one byte past the limit to
	// tell.
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, errTooLarge
	}
	return data, nil
}

// errTooLarge is the reason given for a file over maxFileSize.
var errTooLarge = fmt.Errorf("larger than %d MiB, too large for a PEM file", maxFileSize>>20)

// checkFile refuses anything but a regular file of at most maxFileSize
// bytes.
func checkFile(fi fs.FileInfo) error {
	m := fi.Mode()
	if m.IsRegular() {
		if fi.Size() > maxFileSize {
			return errTooLarge
		}
		return nil
	}
	kind := "a special file"
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a block device"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return fmt.Errorf("not a regular file but %s", kind)
}

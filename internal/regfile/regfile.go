// Package regfile reads the files echoctl is handed by name (config files,
// PEM files, bench results): regular files only, of a bounded size. A FIFO
// would block the open, and with it the command, deaf to SIGINT, until
// something wrote it; a device (/dev/zero) may never end; a file of
// gigabytes would fill memory.
package regfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Read reads name if it is a regular file (symbolic links are followed) of
// at most max bytes; kind names such a file in the error for a larger one
// ("larger than 1 MiB, too large for a config file"). The path is checked
// with Stat before it is opened, the file is opened with O_NONBLOCK so
// that a FIFO put in its place in between cannot block the open, and the
// open file is checked again; the file may grow after that, so one byte
// past max is read to tell. A failure of the file system is returned as
// its *fs.PathError (Cause drops the path); the others name no path.
func Read(name string, max int64, kind string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := check(fi, max, kind); err != nil {
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
	if err := check(fi, max, kind); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, tooLarge(max, kind)
	}
	return data, nil
}

// Cause drops the operation and path of an *fs.PathError, for a caller
// whose message names the file already; other errors come back as they
// are.
func Cause(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// check refuses anything but a regular file of at most max bytes, saying
// what it is.
func check(fi fs.FileInfo, max int64, kind string) error {
	m := fi.Mode()
	if m.IsRegular() {
		if fi.Size() > max {
			return tooLarge(max, kind)
		}
		return nil
	}
	what := "a special file"
	switch {
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	}
	return fmt.Errorf("not a regular file but %s", what)
}

// tooLarge is the reason given for a file over max bytes.
func tooLarge(max int64, kind string) error {
	size := fmt.Sprintf("%d bytes", max)
	if max >= 1<<20 && max%(1<<20) == 0 {
		size = fmt.Sprintf("%d MiB", max>>20)
	}
	return fmt.Errorf("larger than %s, too large for %s", size, kind)
}

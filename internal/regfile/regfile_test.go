//go:build unix

package regfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRead: a regular file (symbolic links followed) of at most max bytes
// is read; anything else is refused at once, a FIFO without being opened.
func TestRead(t *testing.T) {
	const max = 64
	write := func(t *testing.T, path, s string) string {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	fifo := func(t *testing.T, path string) string {
		t.Helper()
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		return path
	}
	tests := []struct {
		name    string
		make    func(t *testing.T, path string) string // the path to read
		wantLen int
		wantErr string
	}{
		{"regular file", func(t *testing.T, p string) string { return write(t, p, "addr: x\n") }, 8, ""},
		{"empty", func(t *testing.T, p string) string { return write(t, p, "") }, 0, ""},
		{"at the limit", func(t *testing.T, p string) string { return write(t, p, strings.Repeat("#", max)) }, max, ""},
		{"over the limit", func(t *testing.T, p string) string { return write(t, p, strings.Repeat("#", max+1)) }, 0, "larger than 64 bytes, too large for a test file"},
		{"symbolic link to a regular file", func(t *testing.T, p string) string {
			if err := os.Symlink(write(t, p+".real", "addr: x\n"), p); err != nil {
				t.Fatal(err)
			}
			return p
		}, 8, ""},
		{"FIFO", fifo, 0, "not a regular file but a named pipe (FIFO)"},
		{"symbolic link to a FIFO", func(t *testing.T, p string) string {
			if err := os.Symlink(fifo(t, p+".fifo"), p); err != nil {
				t.Fatal(err)
			}
			return p
		}, 0, "not a regular file but a named pipe (FIFO)"},
		{"directory", func(t *testing.T, _ string) string { return t.TempDir() }, 0, "not a regular file but a directory"},
		{"character device", func(*testing.T, string) string { return os.DevNull }, 0, "not a regular file but a character device"},
		{"missing", func(t *testing.T, p string) string { return p }, 0, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.make(t, filepath.Join(t.TempDir(), "f"))
			type result struct {
				data []byte
				err  error
			}
			done := make(chan result, 1)
			go func() {
				data, err := Read(path, max, "a test file")
				done <- result{data, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Read still blocked after 10s") // the FIFO's writer end is never opened: a leak, but no hang
			}
			if tt.wantErr != "" {
				if r.err == nil || Cause(r.err).Error() != tt.wantErr {
					t.Fatalf("error = %v, want %s", r.err, tt.wantErr)
				}
				return
			}
			if r.err != nil || len(r.data) != tt.wantLen {
				t.Fatalf("read %d bytes, %v; want %d", len(r.data), r.err, tt.wantLen)
			}
		})
	}
}

// TestCause: the path of an *fs.PathError is dropped; other errors stay.
func TestCause(t *testing.T) {
	other := errors.New("other")
	if got := Cause(&fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}); got != fs.ErrNotExist {
		t.Errorf("Cause(PathError) = %v", got)
	}
	if got := Cause(other); got != other {
		t.Errorf("Cause(other) = %v", got)
	}
}

//go:build unix

package report_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/report"
)

// TestReadRunRefusesUnboundedFiles: ReadRun reads only a regular file of
// at most report.MaxResultSize bytes, and says what it found instead, at
// once: a FIFO used to block it until something wrote to it, and
// /dev/zero to fill memory.
func TestReadRunRefusesUnboundedFiles(t *testing.T) {
	tests := []struct {
		name   string
		make   func(t *testing.T, path string)
		reason string
	}{
		{"FIFO", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, "not a regular file but a named pipe (FIFO)"},
		{"dev-zero", func(t *testing.T, path string) {
			if _, err := os.Stat("/dev/zero"); err != nil {
				t.Skipf("/dev/zero: %v", err)
			}
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file but a character device"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file but a directory"},
		{"one byte over the limit", func(t *testing.T, path string) {
			// Sparse: it takes no disk, and is refused on its size alone.
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(report.MaxResultSize + 1); err != nil {
				t.Fatal(err)
			}
		}, "larger than 256 MiB, too large for a bench result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "run.json")
			tt.make(t, path)
			done := make(chan error, 1)
			go func() {
				_, err := report.ReadRun(path)
				done <- err
			}()
			select {
			case err := <-done:
				if want := "report: " + path + ": " + tt.reason; err == nil || err.Error() != want {
					t.Errorf("ReadRun: %v, want %q", err, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ReadRun still reading after 10s")
			}
		})
	}
}

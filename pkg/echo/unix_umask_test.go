//go:build unix

package echo_test

import (
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestUnixModeFromTheStart: under umask 000 a socket made with UnixMode
// 0600 is never seen wider, not even at the first moment it exists (it
// used to be created 0777, then chmodded). A watcher polls the path while
// Bind runs, and the first mode it sees must already be 0600.
func TestUnixModeFromTheStart(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	const mode fs.FileMode = 0o600
	path := socketPath(t)
	for i := range 50 {
		var stop atomic.Bool
		first := make(chan fs.FileMode, 1)
		go func() {
			for !stop.Load() {
				if fi, err := os.Lstat(path); err == nil {
					first <- fi.Mode()
					return
				}
			}
			first <- 0
		}()
		b, err := (&echo.Server{UnixMode: mode}).Bind(t.Context(), "unix://"+path)
		if err != nil {
			stop.Store(true)
			<-first
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		stop.Store(true)
		seen := <-first
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != mode {
			t.Fatalf("bind %d: socket file %v right after Bind, want a socket with %v", i, fi.Mode(), mode)
		}
		if seen != 0 && seen.Perm() != mode {
			t.Fatalf("bind %d: the socket file was first seen as %v, wider than %v", i, seen, mode)
		}
	}
}

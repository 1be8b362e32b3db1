//go:build unix

package tlsconfig_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/internal/tlsconfig"
)

// maxFileSize is tlsconfig's limit on what it reads of a file.
const maxFileSize = 4 << 20

// loadTimeout bounds a load that must fail at once: a FIFO used to block
// it until something wrote to the FIFO.
const loadTimeout = 10 * time.Second

// unboundedFile is a path that must not be read, and why.
type unboundedFile struct {
	name   string
	make   func(t *testing.T, path string) // makes it at path
	reason string
}

var unboundedFiles = []unboundedFile{
	{"FIFO", mkfifo, "not a regular file but a named pipe (FIFO)"},
	{"dev-zero", symlinkTo("/dev/zero"), "not a regular file but a character device"},
	{"directory", func(t *testing.T, path string) { mkdir(t, path) }, "not a regular file but a directory"},
	{"one byte over 4 MiB", func(t *testing.T, path string) { write(t, path, bytes.Repeat([]byte("x"), maxFileSize+1)) },
		"larger than 4 MiB, too large for a PEM file"},
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

func symlinkTo(target string) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		t.Helper()
		if _, err := os.Stat(target); err != nil {
			t.Skipf("%s: %v", target, err)
		}
		os.Remove(path)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	os.RemoveAll(path)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// promptly runs load and returns its error, failing the test if it has
// not returned within loadTimeout. A load stuck opening or reading the FIFO
// at path is then released by opening it for writing and closing it.
func promptly(t *testing.T, path string, load func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- load() }()
	select {
	case err := <-done:
		return err
	case <-time.After(loadTimeout):
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			f.Close()
		}
		<-done
		t.Fatalf("loading %s did not return within %v", path, loadTimeout)
		return nil
	}
}

// checkFileError checks that err is a *FileError for role and path with
// the given reason.
func checkFileError(t *testing.T, err error, role, path, reason string) {
	t.Helper()
	var fe *tlsconfig.FileError
	if !errors.As(err, &fe) || fe.Role != role || fe.Path != path || fe.Reason() != reason {
		t.Fatalf("error %v; want a %s FileError for %s: %s", err, role, path, reason)
	}
	if want := role + " file " + path + ": " + reason; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestLoadRefusesUnboundedFiles: every file tlsconfig reads (certificate,
// key, client CA, CA) must be a regular file of at most 4 MiB; anything
// else fails at once with a one-line reason, rather than blocking (a FIFO)
// or filling memory (/dev/zero).
func TestLoadRefusesUnboundedFiles(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	leaf := ca.Issue(t, certtest.Options{CommonName: "server", Hosts: []string{"localhost"}})
	loaders := []struct {
		role string
		load func(good, bad string) error // good: a directory holding good files
	}{
		{tlsconfig.RoleCert, func(good, bad string) error {
			_, err := tlsconfig.LoadKeyPair(bad, filepath.Join(good, "server-key.pem"))
			return err
		}},
		{tlsconfig.RoleKey, func(good, bad string) error {
			_, err := tlsconfig.LoadKeyPair(filepath.Join(good, "server.pem"), bad)
			return err
		}},
		{tlsconfig.RoleClientCA, func(good, bad string) error {
			_, err := tlsconfig.LoadServer(filepath.Join(good, "server.pem"), filepath.Join(good, "server-key.pem"), bad)
			return err
		}},
		{tlsconfig.RoleCA, func(_, bad string) error {
			_, err := tlsconfig.Client(tlsconfig.ClientOptions{CAFile: bad})
			return err
		}},
	}
	for _, f := range unboundedFiles {
		for _, l := range loaders {
			t.Run(f.name+"/"+l.role, func(t *testing.T) {
				dir := t.TempDir()
				leaf.WriteFiles(t, dir, "server")
				bad := filepath.Join(dir, "bad.pem")
				f.make(t, bad)
				err := promptly(t, bad, func() error { return l.load(dir, bad) })
				checkFileError(t, err, l.role, bad, f.reason)
			})
		}
	}
}

// TestLoadAtSizeLimit: a file of exactly 4 MiB is read whole.
func TestLoadAtSizeLimit(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "ca")
	file := filepath.Join(dir, "ca.pem")
	// PEM decoding skips text around the blocks.
	padding := bytes.Repeat([]byte("x"), maxFileSize-len(ca.PEM)-1)
	write(t, file, append(append(padding, '\n'), ca.PEM...))
	if _, err := tlsconfig.LoadCertPool(file, tlsconfig.RoleCA); err != nil {
		t.Fatalf("a 4 MiB CA file: %v", err)
	}
}

// TestServerReloadRefusesUnboundedFiles: a reload that meets such a file
// fails at once and keeps serving the certificate it served.
func TestServerReloadRefusesUnboundedFiles(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	first := ca.Issue(t, certtest.Options{CommonName: "first", Hosts: []string{"localhost"}})
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	for _, f := range unboundedFiles {
		for _, role := range []string{tlsconfig.RoleCert, tlsconfig.RoleKey} {
			t.Run(f.name+"/"+role, func(t *testing.T) {
				dir := t.TempDir()
				certFile, keyFile := first.WriteFiles(t, dir, "server")
				s, err := tlsconfig.LoadServer(certFile, keyFile, "")
				if err != nil {
					t.Fatal(err)
				}
				bad := certFile
				if role == tlsconfig.RoleKey {
					bad = keyFile
				}
				f.make(t, bad)
				checkFileError(t, promptly(t, bad, s.Reload), role, bad, f.reason)
				if got, err := handshake(t, s.Config(), client); err != nil || got.Subject.CommonName != "first" {
					t.Fatalf("after a failed reload: %v, %v; want the first certificate still", got, err)
				}
				if s.Certificate().Subject.CommonName != "first" {
					t.Errorf("Certificate() = %v, want the first", s.Certificate().Subject)
				}
			})
		}
	}
}

package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if a test leaves a goroutine behind: every
// serve and send started through Run must have returned by the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer that a running command may write while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is what one in-process run of echoctl produced.
type result struct {
	code           int
	stdout, stderr string
}

// run executes echoctl in-process with a fresh command tree, as cobra's
// executeCommand does, with empty standard input.
func run(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	return runWithInput(t, ctx, "", args...)
}

// runWithInput is run with stdin as standard input. The output buffers are
// safe for concurrent writes: send logs from two goroutines.
func runWithInput(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := Run(ctx, args, Streams{In: strings.NewReader(stdin), Out: &stdout, Err: &stderr})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// cancelledContext is for runs that must fail before they do anything: if
// one wrongly passes validation, serve and send fail at once with exit code
// 1 instead of listening or connecting.
func cancelledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// isolate gives the test a configuration environment of its own: no
// ECHOCTL_* variables, HOME and XDG_CONFIG_HOME in empty temporary
// directories, and an empty working directory, which it returns.
func isolate(t *testing.T) string {
	t.Helper()
	for _, ext := range []string{".yaml", ".yml", ".toml", ".json"} {
		if _, err := os.Stat(filepath.Join("/etc", "echoctl", "config"+ext)); err == nil {
			t.Skipf("/etc/echoctl/config%s exists on this machine and would be read", ext)
		}
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix+"_") {
			unsetenv(t, name)
		}
	}
	unsetenv(t, "NO_COLOR")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	wd := t.TempDir()
	t.Chdir(wd)
	return wd
}

// unsetenv removes name from the environment until the test ends.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // restores the old value at cleanup
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes content to path, creating its directory.
func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

package echo_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// socketPath returns a path for a Unix socket in a fresh directory, short
// enough for sun_path.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "echo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "e.sock")
}

// TestUnixEcho: a Unix socket echoes on both engines (event loops on
// Linux, goroutines), with numbered connection loggers whose peer is the
// socket path, and the same log lines either way.
func TestUnixEcho(t *testing.T) {
	var transcripts []string
	for _, engine := range []struct {
		name  string
		loops bool
		srv   func(*echo.Server) *echo.Server
	}{
		{"event loops", runtime.GOOS == "linux", func(s *echo.Server) *echo.Server { return s }},
		{"goroutines", false, echo.WithoutLoops},
	} {
		t.Run(engine.name, func(t *testing.T) {
			transcripts = append(transcripts, unixEcho(t, engine.srv, engine.loops))
		})
	}
	if len(transcripts) == 2 && transcripts[0] != transcripts[1] {
		t.Errorf("the engines log differently:\nevent loops:\n%s\ngoroutines:\n%s", transcripts[0], transcripts[1])
	}
}

// unixEcho runs TestUnixEcho on one engine and returns the connections'
// log lines other than the data's (logger, level, message), with the
// socket path left out.
func unixEcho(t *testing.T, engine func(*echo.Server) *echo.Server, loops bool) string {
	path := socketPath(t)
	var logs syncBuffer
	srv := engine(&echo.Server{Logger: debugLogger(&logs)})
	addrs, _ := serveBound(t, srv, "unix://"+path)
	if want := []string{"unix://" + path}; !slicesEqual(addrs, want) {
		t.Errorf("Addrs = %q, want %q", addrs, want)
	}
	c := &echo.Client{Addr: "unix://" + path, Timeout: ioTimeout}
	for _, msgs := range [][][]byte{seedMessages, {allBytesT(), randomBytes(3, 5000)}} {
		var out bytes.Buffer
		if _, err := c.Send(t.Context(), msgs, &out); err != nil || !bytes.Equal(out.Bytes(), bytes.Join(msgs, nil)) {
			t.Fatalf("Send = %d bytes, %v", out.Len(), err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != echo.DefaultUnixMode {
		t.Errorf("socket file mode %v, want a socket with %v", fi.Mode(), echo.DefaultUnixMode)
	}
	// Unix peers have no address: connections are numbered.
	deadline := time.Now().Add(ioTimeout)
	for strings.Count(logs.String(), `"message":"closing"`) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	held, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	roundTrip(t, held, []byte("which engine?"))
	if got, want := echo.LoopConns(srv), map[bool]int{false: 0, true: 1}[loops]; got != want {
		t.Errorf("%d connections served by event loops, want %d", got, want)
	}
	seen := map[string]bool{}
	var transcript strings.Builder
	lastReceived := ""
	for _, l := range parseLog(t, logs.String()) {
		if strings.HasPrefix(l.Logger, "echo_") {
			seen[l.Logger] = true
			if l.Peer != path {
				t.Errorf("line %+v: peer %q, want the socket path", l, l.Peer)
			}
			// How the reads cut the data depends on timing: each
			// "received" must be followed by the same "sent", and the
			// other lines must be the same on both engines.
			switch {
			case strings.HasPrefix(l.Message, "received "):
				lastReceived = strings.TrimPrefix(l.Message, "received ")
			case strings.HasPrefix(l.Message, "sent "):
				if got := strings.TrimPrefix(l.Message, "sent "); got != lastReceived {
					t.Errorf("%s: sent %s after received %s", l.Logger, got, lastReceived)
				}
				lastReceived = ""
			case l.Logger != "echo_unix_3":
				fmt.Fprintf(&transcript, "%s %s %s\n", l.Logger, l.Level, l.Message)
			}
		}
		if l.Logger == "main" && strings.HasPrefix(l.Message, "starting up") && l.Message != "starting up on "+path+" (unix)" {
			t.Errorf("start-up line %q", l.Message)
		}
	}
	if !seen["echo_unix_1"] || !seen["echo_unix_2"] || len(seen) != 3 {
		t.Errorf("connection loggers %v, want echo_unix_1, echo_unix_2 and echo_unix_3", seen)
	}
	return transcript.String()
}

func TestUnixMode(t *testing.T) {
	path := socketPath(t)
	serveBound(t, &echo.Server{UnixMode: 0o600}, "unix://"+path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// server killed with SIGKILL does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the stale socket accepts connections")
	}
}

func TestUnixStaleSocketIsReplaced(t *testing.T) {
	path := socketPath(t)
	staleSocket(t, path)
	var logs syncBuffer
	srv := &echo.Server{Logger: debugLogger(&logs)}
	serveBound(t, srv, "unix://"+path)
	c := &echo.Client{Addr: "unix://" + path, Timeout: ioTimeout}
	var out bytes.Buffer
	if _, err := c.Send(t.Context(), seedMessages, &out); err != nil || out.String() != seedEcho {
		t.Fatalf("Send = %q, %v", out.String(), err)
	}
	if !strings.Contains(logs.String(), `"removed stale socket `+path+`"`) {
		t.Errorf("no log line for the stale socket:\n%s", logs.String())
	}
}

func TestUnixLiveSocketIsAnError(t *testing.T) {
	path := socketPath(t)
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	go func() { // the other server keeps serving
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	srv := &echo.Server{}
	_, err = srv.Bind(t.Context(), "unix://"+path)
	if !errors.Is(err, echo.ErrSocketInUse) {
		t.Fatalf("Bind on a live socket = %v, want ErrSocketInUse", err)
	}
	if want := "echo: listen unix://" + path + ": " + path + " is in use: another server is listening on it"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the other server's socket was disturbed: %v", err)
	}
	c.Close()
}

func TestUnixPathThatIsNotASocket(t *testing.T) {
	for _, kind := range []string{"regular file", "directory", "symbolic link"} {
		t.Run(kind, func(t *testing.T) {
			path := socketPath(t)
			switch kind {
			case "regular file":
				if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
					t.Fatal(err)
				}
			case "directory":
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			case "symbolic link":
				if err := os.Symlink("/nonexistent", path); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.Lstat(path)
			_, err := (&echo.Server{}).Bind(t.Context(), "unix://"+path)
			if !errors.Is(err, echo.ErrNotSocket) || !strings.Contains(err.Error(), "is not a socket (a "+kind+"); not removing it") {
				t.Fatalf("Bind = %v; want ErrNotSocket naming a %s", err, kind)
			}
			after, err := os.Lstat(path)
			if err != nil || after.Mode() != before.Mode() {
				t.Fatalf("the %s was changed: %v", kind, err)
			}
			if kind == "regular file" {
				if b, _ := os.ReadFile(path); string(b) != "precious" {
					t.Errorf("file content %q", b)
				}
			}
		})
	}
}

func TestUnixSocketRemovedOnShutdown(t *testing.T) {
	for _, stop := range []string{"Shutdown", "Close"} {
		t.Run(stop, func(t *testing.T) {
			path := socketPath(t)
			srv := &echo.Server{}
			_, s := serveBound(t, srv, "unix://"+path)
			if _, err := os.Stat(path); err != nil {
				t.Fatal(err)
			}
			if stop == "Shutdown" {
				if err := shutdown(srv, ioTimeout); err != nil {
					t.Fatal(err)
				}
			} else {
				srv.Close()
			}
			if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
				t.Fatalf("ServeBound = %v", err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket file still there after %s: %v", stop, err)
			}
		})
	}
}

// TestUnixShutdownLeavesWhatReplacedTheSocket: a server removes its socket
// file on Shutdown only if the path still holds the socket it made: a
// regular file or another server's socket put there since is left alone.
func TestUnixShutdownLeavesWhatReplacedTheSocket(t *testing.T) {
	for _, kind := range []string{"regular file", "another server's socket"} {
		t.Run(kind, func(t *testing.T) {
			path := socketPath(t)
			srv := &echo.Server{}
			_, s := serveBound(t, srv, "unix://"+path)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			switch kind {
			case "regular file":
				if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
					t.Fatal(err)
				}
			case "another server's socket":
				other, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { other.Close() })
			}
			if err := shutdown(srv, ioTimeout); err != nil {
				t.Fatal(err)
			}
			if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
				t.Fatalf("ServeBound = %v", err)
			}
			switch kind {
			case "regular file":
				if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
					t.Errorf("the file at the socket path after Shutdown: %q, %v", b, err)
				}
			case "another server's socket":
				c, err := net.Dial("unix", path)
				if err != nil {
					t.Fatalf("the other server's socket after Shutdown: %v", err)
				}
				c.Close()
			}
		})
	}
}

// TestUnixAddrIsThePath: the listener and its connections give the path
// clients connect to as their address, not the temporary name the socket
// was bound at, and nothing else is left in the directory.
func TestUnixAddrIsThePath(t *testing.T) {
	path := socketPath(t)
	srv := &echo.Server{}
	b, err := srv.Bind(t.Context(), "unix://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.Listeners[0].Addr().String(); got != path {
		t.Errorf("listener address %q, want %q", got, path)
	}
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(ents) != 1 || ents[0].Name() != filepath.Base(path) {
		t.Errorf("directory holds %v (%v), want only the socket", ents, err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := b.Listeners[0].Accept()
		accepted <- c
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	if sc == nil {
		t.Fatal("Accept failed")
	}
	defer sc.Close()
	if got := sc.LocalAddr().String(); got != path {
		t.Errorf("connection local address %q, want %q", got, path)
	}
}

// TestUnixLongestPath: a socket path of the longest length an address may
// have (103 bytes) binds and serves, with a name of one byte and of many,
// though the socket is first bound under a temporary name beside it.
func TestUnixLongestPath(t *testing.T) {
	for _, base := range []string{"s", "echo.sock"} {
		t.Run(base, func(t *testing.T) {
			dir := filepath.Dir(socketPath(t))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			long := filepath.Join(dir, strings.Repeat("d", 103-len(dir)-2-len(base)))
			if err := os.Mkdir(long, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(long, base)
			if len(path) != 103 {
				t.Fatalf("path of %d bytes", len(path))
			}
			serveBound(t, &echo.Server{}, "unix://"+path)
			c := &echo.Client{Addr: "unix://" + path, Timeout: ioTimeout}
			var out bytes.Buffer
			if _, err := c.Send(t.Context(), seedMessages, &out); err != nil || out.String() != seedEcho {
				t.Fatalf("Send = %q, %v", out.String(), err)
			}
		})
	}
}

// TestUnixMissingDirectory: a socket path in a directory that does not
// exist is an error about that directory, not about the temporary name
// the socket is first bound under.
func TestUnixMissingDirectory(t *testing.T) {
	dir := socketPath(t) + ".d"
	_, err := (&echo.Server{}).Bind(t.Context(), "unix://"+filepath.Join(dir, "e.sock"))
	if want := "socket directory " + dir + " does not exist"; err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Bind in a missing directory = %v, want an error that says %q", err, want)
	}
}

// TestUnixClientNotASocket: a client pointed at a path that is no socket
// hears so, not only "connection refused", which the error still wraps.
func TestUnixClientNotASocket(t *testing.T) {
	for _, tt := range []struct{ kind, path string }{
		{"a regular file", writeTemp(t)},
		{"a directory", t.TempDir()},
	} {
		c := &echo.Client{Addr: "unix://" + tt.path, Timeout: ioTimeout}
		_, err := c.Send(t.Context(), [][]byte{[]byte("x")}, nil)
		if want := "is not a socket (" + tt.kind + ")"; err == nil || !strings.Contains(err.Error(), want) ||
			!errors.Is(err, echo.ErrNotSocket) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Send to %s = %v, want an error that says %q", tt.kind, err, want)
		}
	}
}

func writeTemp(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

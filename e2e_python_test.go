package main_test

// Interoperability with the seed: the PyMOTW-3 asyncio streams echo server
// and client, transcribed into testdata/seed/, against echoctl.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/testtool"
)

var (
	seedServerPy = filepath.Join("testdata", "seed", "asyncio_echo_server_coroutine.py")
	seedClientPy = filepath.Join("testdata", "seed", "asyncio_echo_client_coroutine.py")
	goldenServer = filepath.Join("testdata", "golden", "seed_server_transcript.txt")
	// seedServerText is the server transcript printed in the seed text,
	// with the underscores of its logger names restored.
	seedServerText = filepath.Join("testdata", "seed", "server_transcript.txt")
)

var python struct {
	once sync.Once
	path string // the interpreter itself, not a pyenv shim that needs HOME
	err  error
}

// needPython returns the python3 interpreter, or skips the test.
func needPython(t *testing.T) string {
	t.Helper()
	python.once.Do(func() {
		var p string
		if p, python.err = exec.LookPath("python3"); python.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, p, "-c", "import sys; assert sys.version_info >= (3, 8); print(sys.executable)").Output()
		if python.err = err; err == nil {
			python.path = strings.TrimSpace(string(out))
		}
	})
	if python.err != nil || python.path == "" {
		if *update {
			t.Fatalf("-update needs python3: %v", python.err)
		}
		testtool.Missing(t, fmt.Sprintf("python3 >= 3.8 (the seed's programs): %v", python.err))
	}
	return python.path
}

// pyWrapper runs a script with SIGINT raising KeyboardInterrupt even when
// the test was started with SIGINT ignored (as a background job of a
// non-interactive shell is), since the seed server stops on Ctrl-C.
const pyWrapper = `import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")`

func pyCmd(t *testing.T, ctx context.Context, script string, args ...string) *exec.Cmd {
	t.Helper()
	py := needPython(t)
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	s := spec{Env: []string{"PYTHONDONTWRITEBYTECODE=1"}}
	return s.command(t, ctx, py, append([]string{"-c", pyWrapper, abs}, args...)...)
}

// startSeedServer runs the seed server on a free 127.0.0.1 port.
func startSeedServer(t *testing.T) *proc {
	t.Helper()
	port := unusedPort(t)
	cmd := pyCmd(t, context.Background(), seedServerPy, "127.0.0.1", strconv.Itoa(port))
	p := startProc(t, cmd, syscall.SIGINT)
	if p.Host != "127.0.0.1" || p.Port != port {
		t.Fatalf("seed server started on %s port %d, want 127.0.0.1 port %d", p.Host, p.Port, port)
	}
	return p
}

// runSeedClient runs the seed client against srv and returns its result.
func runSeedClient(t *testing.T, srv *proc) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := pyCmd(t, ctx, seedClientPy, srv.Host, strconv.Itoa(srv.Port))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{Code: exitCode(err), Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("seed client did not finish within %v:\n%s", runTimeout, r)
	}
	return r
}

// TestSeedServerEchoctlSend: echoctl send against the Python seed server.
func TestSeedServerEchoctlSend(t *testing.T) {
	t.Parallel()
	needPython(t)
	srv := startSeedServer(t)

	r := echoctl(t, spec{}, "send", "--addr", srv.Addr())
	if r.Code != 0 || string(r.Stdout) != seedEcho {
		t.Errorf("default messages: want exit 0 and %q:\n%s", seedEcho, r)
	}
	checkClientLog(t, r, "127.0.0.1", srv.Port)

	data := make([]byte, 1<<20)
	rand.Read(data)
	r = echoctl(t, spec{Stdin: bytes.NewReader(data)}, "send", "--stdin", "--addr", srv.Addr())
	if r.Code != 0 || !bytes.Equal(r.Stdout, data) {
		t.Errorf("--stdin 1 MiB: want exit 0 and the same bytes back; got exit %d, %d bytes, first difference at %d:\n%s", r.Code, len(r.Stdout), firstDiff(r.Stdout, data), r.Stderr)
	}
	if code := srv.Stop(syscall.SIGINT); code != 0 {
		t.Errorf("seed server exit %d; stderr:\n%s", code, srv.Stderr)
	}
}

// TestSeedClientEchoctlServe: the Python seed client against echoctl serve.
func TestSeedClientEchoctlServe(t *testing.T) {
	t.Parallel()
	needPython(t)
	srv := startServer(t, spec{}, "127.0.0.1")
	r := runSeedClient(t, srv)
	if r.Code != 0 {
		t.Fatalf("seed client: want exit 0:\n%s", r)
	}
	got := joinChunks(dataChunks(t, r.Lines(), "echo_client", "received"))
	if string(got) != seedEcho {
		t.Errorf("the seed client's received lines add up to %q, want %q:\n%s", got, seedEcho, r.Stderr)
	}
	for _, want := range []string{
		"echo_client: connecting to 127.0.0.1 port " + strconv.Itoa(srv.Port),
		"echo_client: sending b'This is the message. '",
		"echo_client: waiting for response",
		"echo_client: closing",
	} {
		if count(r.Lines(), want) != 1 {
			t.Errorf("seed client log lacks %q:\n%s", want, r.Stderr)
		}
	}
	for _, l := range r.Lines() {
		if strings.Contains(l, "Error") || strings.Contains(l, "Warning") || strings.Contains(l, "Traceback") {
			t.Errorf("seed client logged a problem: %q", l)
		}
	}
}

var (
	peerNameRE = regexp.MustCompile(`echo_(127\.0\.0\.1|::1)_\d+`)
	portWordRE = regexp.MustCompile(`port \d+`)
)

// normaliseTranscript makes a server's text transcript comparable across
// runs and implementations: it drops the lines that belong to the Python
// runtime, merges each connection's consecutive received/sent lines (how
// the stream is split into reads varies from run to run), and replaces
// port numbers with PORT.
func normaliseTranscript(t *testing.T, lines []string) []string {
	t.Helper()
	var kept []string
	for _, l := range lines {
		if strings.HasPrefix(l, "asyncio: ") || l == "main: closing event loop" {
			continue
		}
		kept = append(kept, l)
	}
	var out []string
	for i := 0; i < len(kept); {
		m := dataLineRE.FindStringSubmatch(kept[i])
		if m == nil || m[2] == "sending" {
			out = append(out, kept[i])
			i++
			continue
		}
		logger := m[1]
		var received, sent []byte
		for ; i < len(kept); i++ {
			m := dataLineRE.FindStringSubmatch(kept[i])
			if m == nil || m[1] != logger || m[2] == "sending" {
				break
			}
			b, err := pyUnquote(m[3])
			if err != nil {
				t.Fatalf("line %q: %v", kept[i], err)
			}
			if m[2] == "received" {
				received = append(received, b...)
			} else {
				sent = append(sent, b...)
			}
		}
		out = append(out, logger+": received "+pyQuote(received), logger+": sent "+pyQuote(sent))
	}
	for i, l := range out {
		l = peerNameRE.ReplaceAllString(l, "echo_127.0.0.1_PORT")
		out[i] = portWordRE.ReplaceAllString(l, "port PORT")
	}
	return out
}

// serverTranscript runs the seed client three times, one after the other,
// against srv, stops srv with sig and returns its normalised transcript.
func serverTranscript(t *testing.T, srv *proc, sig os.Signal) []string {
	t.Helper()
	for i := range 3 {
		r := runSeedClient(t, srv)
		if r.Code != 0 {
			t.Fatalf("seed client run %d: want exit 0:\n%s", i+1, r)
		}
		if got := joinChunks(dataChunks(t, r.Lines(), "echo_client", "received")); string(got) != seedEcho {
			t.Fatalf("seed client run %d received %q:\n%s", i+1, got, r.Stderr)
		}
	}
	// The server logs "closing" after the client has read EOF: wait for
	// the third before stopping it.
	deadline := time.Now().Add(readyTimeout)
	for count(normaliseTranscript(t, srv.Lines()), "echo_127.0.0.1_PORT: closing") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("server did not log three closings:\n%s", srv.Stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code := srv.Stop(sig); code != 0 {
		t.Fatalf("server exit %d; stderr:\n%s", code, srv.Stderr)
	}
	return normaliseTranscript(t, srv.Lines())
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w || i >= len(got) || i >= len(want) {
			mark = "! "
		}
		b.WriteString(mark + strconv.Itoa(i+1) + ": got  " + strconv.Quote(g) + "\n")
		if mark == "! " {
			b.WriteString("   " + strconv.Itoa(i+1) + ": want " + strconv.Quote(w) + "\n")
		}
	}
	return b.String()
}

// TestSeedServerTranscript compares the seed server's transcript with
// echoctl serve -v's, both driven by the seed client, line by line after
// normalisation, against testdata/golden/seed_server_transcript.txt.
// go test -run TestSeedServerTranscript -update regenerates the golden file
// from the Python seed server.
func TestSeedServerTranscript(t *testing.T) {
	t.Parallel()
	needPython(t)

	pyLines := serverTranscript(t, startSeedServer(t), syscall.SIGINT)
	if *update {
		if err := os.WriteFile(goldenServer, []byte(strings.Join(pyLines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", goldenServer)
	}
	raw, err := os.ReadFile(goldenServer)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSeedServerTranscript -update)", err)
	}
	golden := splitLines(string(raw))
	if strings.Join(pyLines, "\n") != strings.Join(golden, "\n") {
		t.Errorf("seed server transcript differs from %s:\n%s", goldenServer, diffLines(pyLines, golden))
	}

	goLines := serverTranscript(t, startServer(t, spec{}, "127.0.0.1", "-v", "--log-format", "text"), syscall.SIGTERM)
	if strings.Join(goLines, "\n") != strings.Join(golden, "\n") {
		t.Errorf("echoctl serve -v transcript differs from the seed's (%s):\n%s", goldenServer, diffLines(goLines, golden))
	}

	// And against the transcript printed in the seed itself, transcribed
	// into seedServerText: served on localhost, whose peers were IPv6
	// there, and cut before the server was stopped.
	raw, err = os.ReadFile(seedServerText)
	if err != nil {
		t.Fatal(err)
	}
	seedLines := normaliseTranscript(t, splitLines(string(raw)))
	seedLines[0] = strings.Replace(seedLines[0], "localhost", "127.0.0.1", 1)
	if n := len(seedLines); len(goLines) != n+1 || strings.Join(goLines[:n], "\n") != strings.Join(seedLines, "\n") {
		t.Errorf("echoctl serve -v transcript differs from the one in the seed (%s, then main: closing server):\n%s", seedServerText, diffLines(goLines, seedLines))
	}
}

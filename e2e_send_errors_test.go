package main_test

// End-to-end tests of how send reports a server that closes at once, a TLS
// address served without TLS, and a standard output that cannot be
// written.

import (
	"bytes"
	"context"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// checkErrorLast checks that the last line of stderr is want, once, and
// that every line before it is one of the client's log lines.
func checkErrorLast(t *testing.T, r result, want string) {
	t.Helper()
	lines := r.Lines()
	if len(lines) == 0 || lines[len(lines)-1] != want {
		t.Fatalf("last stderr line is not %q:\n%s", want, r)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "echo_client: ") {
			t.Errorf("stderr line %q before the error is not a client log line:\n%s", l, r)
		}
	}
}

// TestSendServerFull: against `serve --max-conns 1` with its one connection
// held, the server closes every other connection before echoing a byte.
// send exits 1 saying so, never 3 ("echo differs", as it did in about 40%
// of tries), and its error line comes after every log line (a client
// goroutine used to log after it). The outcome was a race: 20 rounds.
func TestSendServerFull(t *testing.T) {
	t.Parallel()
	srv := startServer(t, spec{}, "127.0.0.1", "--max-conns", "1")
	held, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	srv.WaitLine(reLine(`^echo_127\.0\.0\.1_\d+: connection accepted$`), readyTimeout)

	want := "echoctl: echo " + srv.Addr() + ": server closed the connection before echoing anything"
	for i := range 20 {
		r := echoctl(t, spec{}, "send", "-v", "--addr", srv.Addr())
		if r.Code != 1 {
			t.Fatalf("round %d: want exit 1:\n%s", i, r)
		}
		checkErrorLast(t, r, want)
		if len(r.Stdout) != 0 {
			t.Errorf("round %d: stdout = %q, want nothing", i, r.Stdout)
		}
	}
}

// TestSendTLSToPlainServer: a tls:// address served by a plain echo server
// says that the server does not speak TLS.
func TestSendTLSToPlainServer(t *testing.T) {
	t.Parallel()
	srv := startServer(t, spec{}, "127.0.0.1")
	r := echoctl(t, spec{}, "send", "--tls-insecure", "--addr", "tls://"+srv.Addr())
	if r.Code != 1 {
		t.Fatalf("want exit 1:\n%s", r)
	}
	checkErrorLast(t, r, "echoctl: connect tls://"+srv.Addr()+": server does not speak TLS (it echoed the ClientHello)")
}

// TestSendStdoutFull: `send > /dev/full` is an error writing standard
// output, not a network error naming the server; still exit 1.
func TestSendStdoutFull(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("/dev/full is Linux's")
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	srv := startServer(t, spec{}, "127.0.0.1")

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := spec{}.command(t, ctx, echoctlBin, "send", "--addr", srv.Addr())
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = full, &stderr
	start := time.Now()
	err = cmd.Run()
	r := result{Code: exitCode(err), Stderr: stderr.Bytes(), Elapsed: time.Since(start)}
	if r.Code != 1 {
		t.Fatalf("want exit 1:\n%s", r)
	}
	checkErrorLast(t, r, "echoctl: write standard output: no space left on device")
}

package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitTimeout bounds every wait for the in-process server.
const waitTimeout = 10 * time.Second

// serveProcess is `echoctl serve` running in-process on 127.0.0.1:0.
type serveProcess struct {
	addr   string // 127.0.0.1:PORT
	port   string
	stderr *syncBuffer
	stdout *syncBuffer
	cancel context.CancelFunc // what SIGINT does
	done   chan int           // receives Run's exit code
}

// startServe runs `echoctl serve --addr 127.0.0.1:0 --log-format json` plus
// extra args in a goroutine, and waits for its "starting up" line to learn
// the port. Cleanup cancels it and waits for Run to return.
func startServe(t *testing.T, extra ...string) *serveProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &serveProcess{stderr: &syncBuffer{}, stdout: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	go func() {
		p.done <- Run(ctx, args, Streams{In: strings.NewReader(""), Out: p.stdout, Err: p.stderr})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(waitTimeout):
			t.Errorf("serve did not return within %v of its context being cancelled", waitTimeout)
		}
	})

	const prefix = "starting up on 127.0.0.1 port "
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, line := range jsonLines(t, p.stderr.String()) {
			if msg, _ := line["message"].(string); line["logger"] == "main" && strings.HasPrefix(msg, prefix) {
				p.port = strings.TrimPrefix(msg, prefix)
				p.addr = net.JoinHostPort("127.0.0.1", p.port)
				return p
			}
		}
		select {
		case code := <-p.done:
			p.done <- code // for Cleanup
			t.Fatalf("serve exited with code %d before starting up; stderr:\n%s", code, p.stderr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line from serve within %v; stderr:\n%s", prefix, waitTimeout, p.stderr)
		}
	}
}

// stop cancels serve's context, as SIGINT does, and returns its exit code
// and how long it took to return.
func (p *serveProcess) stop(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	p.cancel()
	select {
	case code := <-p.done:
		p.done <- code // for Cleanup
		return code, time.Since(start)
	case <-time.After(waitTimeout):
		t.Fatalf("serve did not return within %v of its context being cancelled", waitTimeout)
		return -1, 0
	}
}

// jsonLines decodes every complete line of s as a JSON object.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.Lines(s) {
		if !strings.HasSuffix(line, "\n") {
			break // still being written
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// hasLogLine reports whether one of the JSON lines has the logger (or a
// logger starting with it, if it ends in "_") and message.
func hasLogLine(lines []map[string]any, logger, message string) bool {
	for _, l := range lines {
		name, _ := l["logger"].(string)
		if (name == logger || strings.HasSuffix(logger, "_") && strings.HasPrefix(name, logger)) && l["message"] == message {
			return true
		}
	}
	return false
}

func TestServeSend(t *testing.T) {
	isolate(t)
	srv := startServe(t, "--shutdown-timeout", "2s")

	r := run(t, context.Background(), "send", "--addr", srv.addr)
	if r.code != ExitOK {
		t.Fatalf("send: exit code %d, stderr:\n%s", r.code, r.stderr)
	}
	if want := "This is the message. It will be sent in parts."; r.stdout != want {
		t.Errorf("send stdout = %q, want the echo of the seed's messages %q", r.stdout, want)
	}
	wantLog := "echo_client: connecting to 127.0.0.1 port " + srv.port + "\n" +
		"echo_client: waiting for response\n" +
		"echo_client: closing\n"
	if r.stderr != wantLog {
		t.Errorf("send stderr:\n got %q\nwant %q", r.stderr, wantLog)
	}

	// The server logs the connection (its log is written out within
	// logging.FlushEvery, and in full when it returns).
	srv.waitLogLine(t, "echo_127.0.0.1_", "connection accepted")
	srv.waitLogLine(t, "echo_127.0.0.1_", "closing")

	code, elapsed := srv.stop(t)
	if code != ExitOK {
		t.Errorf("serve exit code %d after cancel, want 0; stderr:\n%s", code, srv.stderr)
	}
	if elapsed > 2*time.Second {
		t.Errorf("serve took %v to return with no connection open, more than its shutdown timeout 2s", elapsed)
	}
	lines := jsonLines(t, srv.stderr.String())
	if !hasLogLine(lines, "main", "closing server") {
		t.Errorf("serve logged no closing server line; stderr:\n%s", srv.stderr)
	}
	for _, l := range lines {
		for _, field := range []string{"level", "time", "message", "logger"} {
			if _, ok := l[field]; !ok {
				t.Errorf("json log line %v has no %q field", l, field)
			}
		}
	}
	if out := srv.stdout.String(); out != "" {
		t.Errorf("serve wrote %q to stdout, want nothing", out)
	}
}

func TestSendMessages(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	big := strings.Repeat("0123456789abcdef", 64<<10/16) + "\x00\xff\r\n" // 64 KiB, binary

	tests := []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string // after send --addr ADDR
		want  string
	}{
		{name: "arguments", args: []string{"hello", " world"}, want: "hello world"},
		{name: "arguments override ECHOCTL_MESSAGES", env: map[string]string{"ECHOCTL_MESSAGES": `["env"]`},
			args: []string{"arg"}, want: "arg"},
		{name: "ECHOCTL_MESSAGES JSON array", env: map[string]string{"ECHOCTL_MESSAGES": `["one ", "two"]`}, want: "one two"},
		{name: "ECHOCTL_MESSAGES plain string", env: map[string]string{"ECHOCTL_MESSAGES": `one, "two"`}, want: `one, "two"`},
		{name: "stdin", stdin: big, args: []string{"--stdin"}, want: big},
		{name: "stdin with buffer size 1", stdin: "tiny reads", args: []string{"--stdin", "--buffer-size", "1"}, want: "tiny reads"},
		{name: "empty stdin", stdin: "", args: []string{"--stdin"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"send", "--addr", srv.addr}, tt.args...)
			r := runWithInput(t, context.Background(), tt.stdin, args...)
			if r.code != ExitOK {
				t.Fatalf("exit code %d, stderr:\n%s", r.code, r.stderr)
			}
			if r.stdout != tt.want {
				t.Errorf("stdout (%d bytes) differs from what was sent (%d bytes)", len(r.stdout), len(tt.want))
			}
		})
	}
}

// TestSendVerbose: -v logs the seed's transcript at debug level.
func TestSendVerbose(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	for _, args := range [][]string{{"-v"}, {"--log-level", "debug"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, context.Background(), append([]string{"send", "--addr", srv.addr, "hello"}, args...)...)
			if r.code != ExitOK || r.stdout != "hello" {
				t.Fatalf("exit code %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
			}
			for _, want := range []string{"\necho_client: sending b'hello'\n", "\necho_client: received b'"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr has no %q:\n%s", want, r.stderr)
				}
			}
		})
	}
	r := run(t, context.Background(), "send", "--addr", srv.addr, "hello")
	if strings.Contains(r.stderr, "sending") {
		t.Errorf("without -v stderr has debug lines:\n%s", r.stderr)
	}
}

// fakeServer accepts one connection on 127.0.0.1:0, reads until the peer
// half-closes, and writes back reply(what it read). Cleanup waits for it.
func fakeServer(t *testing.T, reply func([]byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitTimeout))
		got, _ := io.ReadAll(c)
		c.Write(reply(got))
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestSendMismatch(t *testing.T) {
	tests := []struct {
		name  string
		reply func([]byte) []byte
		want  string
	}{
		{"changed byte", bytes.ToUpper,
			"echo differs from what was sent at byte 0: sent b'h', received b'H'"},
		{"short echo", func(b []byte) []byte { return b[:3] },
			"echo differs from what was sent: the server closed after 3 bytes, before the echo was complete"},
		{"extra byte", func(b []byte) []byte { return append(b, '!') },
			"echo differs from what was sent at byte 5: received b'!' after the end of what was sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			addr := fakeServer(t, tt.reply)
			r := run(t, context.Background(), "send", "--addr", addr, "--log-level", "disabled", "hello")
			if r.code != ExitMismatch {
				t.Errorf("exit code %d, want %d", r.code, ExitMismatch)
			}
			if want := "echoctl: " + tt.want + "\n"; r.stderr != want {
				t.Errorf("stderr:\n got %q\nwant %q", r.stderr, want)
			}
		})
	}
}

// waitLogLine waits until serve has logged message from logger (see
// hasLogLine).
func (p *serveProcess) waitLogLine(t *testing.T, logger, message string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !hasLogLine(jsonLines(t, p.stderr.String()), logger, message) {
		if time.Now().After(deadline) {
			t.Fatalf("serve logged no %q line from %s within %v; stderr:\n%s", message, logger, waitTimeout, p.stderr)
		}
		time.Sleep(5 * time.Millisecond) // polling a log, as startServe does
	}
}

// TestSendServerFull: a server at --max-conns closes a new connection before
// echoing a byte. send exits 1 and says so (it exited 3, "echo differs ...
// after 0 bytes", in about 40% of tries: whether its reader or its writer
// saw the close first), and its error line is the last line of stderr. A
// few rounds, as the outcome was a race.
func TestSendServerFull(t *testing.T) {
	isolate(t)
	srv := startServe(t, "--max-conns", "1")
	held, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	srv.waitLogLine(t, "echo_127.0.0.1_", "connection accepted")

	want := "echoctl: echo " + srv.addr + ": server closed the connection before echoing anything"
	for range 10 {
		r := run(t, context.Background(), "send", "--addr", srv.addr, "-v")
		if r.code != ExitNetwork {
			t.Fatalf("exit code %d, want %d; stderr:\n%s", r.code, ExitNetwork, r.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if last := lines[len(lines)-1]; last != want {
			t.Fatalf("last stderr line %q, want %q; stderr:\n%s", last, want, r.stderr)
		}
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, "echo_client: ") {
				t.Errorf("stderr line %q before the error is not a client log line", l)
			}
		}
		if r.stdout != "" {
			t.Errorf("stdout = %q, want nothing", r.stdout)
		}
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// TestSendStdoutFails: an echo that cannot be written to standard output
// (send > /dev/full) is reported as such, not as a network error naming the
// server; still exit 1.
func TestSendStdoutFails(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	full := &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
	for _, args := range [][]string{{"hello"}, {"--stdin"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stderr syncBuffer
			args := append([]string{"send", "--addr", srv.addr, "--log-level", "disabled"}, args...)
			code := Run(context.Background(), args, Streams{In: strings.NewReader("hello"), Out: failingWriter{full}, Err: &stderr})
			if code != ExitNetwork {
				t.Errorf("exit code %d, want %d", code, ExitNetwork)
			}
			if got, want := stderr.String(), "echoctl: write standard output: no space left on device\n"; got != want {
				t.Errorf("stderr = %q, want %q", got, want)
			}
		})
	}
}

// TestBenchStdoutFails: bench's result that cannot be written to standard
// output is reported as send's is, exit 1.
func TestBenchStdoutFails(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	full := &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
	var stderr syncBuffer
	code := Run(context.Background(), []string{"bench", "--addr", srv.addr, "--duration", "200ms", "--warmup", "0s"},
		Streams{In: strings.NewReader(""), Out: failingWriter{full}, Err: &stderr})
	if want := "echoctl: write standard output: no space left on device\n"; code != ExitNetwork || stderr.String() != want {
		t.Errorf("exit code %d, stderr %q; want %d, %q", code, stderr.String(), ExitNetwork, want)
	}
}

// TestHelpStdoutFails: help and completion scripts that cannot be written
// to standard output (> /dev/full) exit 1 with one line, as any other
// output; cobra writes them without a word of a failed write.
func TestHelpStdoutFails(t *testing.T) {
	isolate(t)
	full := &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
	for _, args := range [][]string{{"--help"}, {"help", "send"}, {"bench", "report", "--help"}, {"completion", "bash"}, {"send", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stderr syncBuffer
			code := Run(context.Background(), args, Streams{In: strings.NewReader(""), Out: failingWriter{full}, Err: &stderr})
			if want := "echoctl: write standard output: write /dev/stdout: no space left on device\n"; code != ExitNetwork || stderr.String() != want {
				t.Errorf("exit code %d, stderr %q; want %d, %q", code, stderr.String(), ExitNetwork, want)
			}
		})
	}
}

// TestSendTLSToPlainServer: a tls:// address served by a plain echo server
// says that the server does not speak TLS, rather than Go's "unexpected
// handshake message of type *tls.clientHelloMsg".
func TestSendTLSToPlainServer(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	r := run(t, context.Background(), "send", "--addr", "tls://"+srv.addr, "--tls-insecure", "--log-level", "disabled")
	if r.code != ExitNetwork {
		t.Errorf("exit code %d, want %d", r.code, ExitNetwork)
	}
	if want := "echoctl: connect tls://" + srv.addr + ": server does not speak TLS (it echoed the ClientHello)\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

// TestSendEmptyHost: --addr :PORT connects to localhost and says so.
func TestSendEmptyHost(t *testing.T) {
	isolate(t)
	srv := startServe(t)
	r := run(t, context.Background(), "send", "--addr", ":"+srv.port, "hello")
	if r.code != ExitOK || r.stdout != "hello" {
		t.Fatalf("exit code %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if want := "echo_client: connecting to localhost port " + srv.port + "\n"; !strings.HasPrefix(r.stderr, want) {
		t.Errorf("stderr does not start with %q:\n%s", want, r.stderr)
	}
}

func TestRunNetworkErrors(t *testing.T) {
	isolate(t)
	// A port nobody listens on: bind one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	// A port in use.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name   string
		args   []string
		prefix string // of the error message
	}{
		{"send connection refused", []string{"send", "--addr", closedAddr, "--log-level", "disabled"},
			"connect " + closedAddr + ": connection refused"},
		{"serve address in use", []string{"serve", "--addr", busy.Addr().String(), "--log-level", "disabled"},
			"echo: listen " + busy.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			r := run(t, ctx, tt.args...)
			if r.code != ExitNetwork {
				t.Errorf("exit code %d, want %d", r.code, ExitNetwork)
			}
			if !strings.HasPrefix(r.stderr, "echoctl: "+tt.prefix) || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
				t.Errorf("stderr = %q, want one line starting %q", r.stderr, "echoctl: "+tt.prefix)
			}
		})
	}
}

// TestServeShutdownTimeout: a connection still open when serve is
// cancelled gets --shutdown-timeout to finish, is then closed cleanly, and
// serve still exits 0.
func TestServeShutdownTimeout(t *testing.T) {
	isolate(t)
	const grace = 300 * time.Millisecond
	srv := startServe(t, "--shutdown-timeout", grace.String())

	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v; want ping", buf, err)
	}

	// The client reads until the server closes, then closes too.
	clientDone := make(chan error, 1)
	go func() {
		rest, err := io.ReadAll(conn)
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("read %q after the echo", rest)
		}
		conn.Close()
		clientDone <- err
	}()

	code, elapsed := srv.stop(t)
	if code != ExitOK {
		t.Errorf("serve exit code %d, want 0; stderr:\n%s", code, srv.stderr)
	}
	if elapsed < grace {
		t.Errorf("serve returned after %v, before its shutdown timeout %v with a connection open", elapsed, grace)
	}
	// drainLinger (1s) bounds the close after the timeout.
	if limit := grace + 2*time.Second; elapsed > limit {
		t.Errorf("serve returned after %v, more than %v", elapsed, limit)
	}
	if err := <-clientDone; err != nil {
		t.Errorf("client: %v (want a clean end of stream)", err)
	}
	if !hasLogLine(jsonLines(t, srv.stderr.String()), "main", "shutdown timeout reached: closed the connections still open") {
		t.Errorf("serve did not log that the shutdown timeout was reached; stderr:\n%s", srv.stderr)
	}
}

// TestServeShutdownTimeoutZero: the duration error message says "0 for no
// limit", so --shutdown-timeout 0 must wait for open connections however
// long they take.
func TestServeShutdownTimeoutZero(t *testing.T) {
	isolate(t)
	srv := startServe(t, "--shutdown-timeout", "0")
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	srv.cancel()
	select {
	case code := <-srv.done:
		srv.done <- code
		t.Fatalf("serve returned %d with a connection still open and no shutdown limit", code)
	case <-time.After(1500 * time.Millisecond): // longer than drainLinger
	}
	conn.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatal(err)
	}
	if code, _ := srv.stop(t); code != ExitOK {
		t.Errorf("serve exit code %d, want 0", code)
	}
}

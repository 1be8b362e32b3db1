package main_test

// End-to-end tests: build the echoctl binary once, then run it as a user
// would, with os/exec, on loopback addresses only and never on fixed ports.
// Helpers live here; the tests are in the other e2e_*_test.go files.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
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

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "regenerate testdata/golden files (from the Python seed programs)")

// echoctlBin is the binary built by TestMain.
var echoctlBin string

const (
	// runTimeout bounds one run of a short-lived command.
	runTimeout = 20 * time.Second
	// readyTimeout bounds waiting for a server's "starting up" line.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds waiting for a signalled server to exit.
	stopTimeout = 10 * time.Second
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "echoctl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	echoctlBin = filepath.Join(dir, "echoctl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	build := exec.CommandContext(ctx, "go", "build", "-o", echoctlBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	err = build.Run()
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		// No test may leave a goroutine behind: a process still running,
		// or a copy from its pipes.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutines left behind:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// spec describes how to run a process.
type spec struct {
	// Env is added to the clean base environment (later entries win).
	Env []string
	// Dir is the working directory; "" means a fresh empty directory, so
	// that no ./echoctl.yaml is found by accident.
	Dir string
	// Stdin is the standard input; nil means none.
	Stdin io.Reader
}

// baseEnv is the environment without any ECHOCTL_* variable, with HOME and
// XDG_CONFIG_HOME pointing at an empty directory, so that only the config
// a test writes can be found.
func baseEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ECHOCTL_") || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "NO_COLOR=1")
}

func (s spec) command(t *testing.T, ctx context.Context, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(baseEnv(t), s.Env...)
	cmd.Dir = s.Dir
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	cmd.Stdin = s.Stdin
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// result is how a command ended.
type result struct {
	Code           int
	Stdout, Stderr []byte
	Elapsed        time.Duration
}

// Lines returns stderr split into lines, without the final newline.
func (r result) Lines() []string { return splitLines(string(r.Stderr)) }

func (r result) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout (%d bytes): %.300q\nstderr:\n%s", r.Code, r.Elapsed.Round(time.Millisecond), len(r.Stdout), r.Stdout, r.Stderr)
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// echoctl runs the binary with args to completion (bounded by runTimeout).
func echoctl(t *testing.T, s spec, args ...string) result {
	t.Helper()
	return runProg(t, s, echoctlBin, args...)
}

func runProg(t *testing.T, s spec, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := s.command(t, ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{Code: exitCode(err), Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within %v:\n%s", filepath.Base(name), args, runTimeout, r)
	}
	if err != nil && r.Code == -1 {
		t.Fatalf("%s %q: %v\n%s", filepath.Base(name), args, err, r)
	}
	return r
}

// lineBuffer collects a process's output, safe for concurrent use.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// completeLines returns the lines ended by a newline so far.
func (b *lineBuffer) completeLines() []string {
	s := b.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// proc is a long-running process: a server.
type proc struct {
	t        *testing.T
	name     string
	cmd      *exec.Cmd
	stopSig  os.Signal
	Stdout   *lineBuffer
	Stderr   *lineBuffer
	done     chan struct{}
	code     int
	exitedAt time.Time

	// Host and Port are from the "starting up on HOST port PORT" line.
	Host string
	Port int
}

var startingUpRE = regexp.MustCompile(`starting up on (\S+) port (\d+)`)

// startProc starts cmd, waits (bounded) for a "starting up on H port N"
// line on its stderr, and on cleanup stops it with stopSig.
func startProc(t *testing.T, cmd *exec.Cmd, stopSig os.Signal) *proc {
	t.Helper()
	p, line := launchProc(t, cmd, stopSig, startingUpRE)
	m := startingUpRE.FindStringSubmatch(line)
	p.Host = m[1]
	p.Port, _ = strconv.Atoi(m[2])
	if p.Port == 0 {
		t.Fatalf("%s: no port in %q", p.name, line)
	}
	return p
}

// startProcLine is startProc for a process whose first line of interest
// need not hold a port (a Unix socket's start-up line): it waits for a
// stderr line matching ready, and leaves Host and Port unset.
func startProcLine(t *testing.T, cmd *exec.Cmd, stopSig os.Signal, ready *regexp.Regexp) *proc {
	t.Helper()
	p, _ := launchProc(t, cmd, stopSig, ready)
	return p
}

// launchProc starts cmd, stops it with stopSig on cleanup, and waits
// (bounded) for a stderr line matching ready, which it returns.
func launchProc(t *testing.T, cmd *exec.Cmd, stopSig os.Signal, ready *regexp.Regexp) (*proc, string) {
	t.Helper()
	return launchProcWithin(t, cmd, stopSig, ready, readyTimeout)
}

// launchProcWithin is launchProc waiting up to timeout for the line.
func launchProcWithin(t *testing.T, cmd *exec.Cmd, stopSig os.Signal, ready *regexp.Regexp, timeout time.Duration) (*proc, string) {
	t.Helper()
	p := &proc{t: t, name: filepath.Base(cmd.Path), cmd: cmd, stopSig: stopSig, Stdout: &lineBuffer{}, Stderr: &lineBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		err := cmd.Wait()
		p.code = exitCode(err)
		p.exitedAt = time.Now()
		close(p.done)
	}()
	t.Cleanup(p.cleanup)

	deadline := time.Now().Add(timeout)
	for {
		for _, line := range p.Lines() {
			if ready.MatchString(line) {
				return p, line
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s %q exited with %d before starting up:\nstderr:\n%s", p.name, cmd.Args, p.code, p.Stderr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %q did not start up within %v:\nstderr:\n%s", p.name, cmd.Args, timeout, p.Stderr)
		}
	}
}

func (p *proc) cleanup() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(p.stopSig)
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	p.cmd.Process.Kill()
	<-p.done // bounded by the kill and cmd.WaitDelay
	p.t.Errorf("%s did not exit within %v of %v; killed it. stderr:\n%s", p.name, stopTimeout, p.stopSig, p.Stderr)
}

// Addr is the loopback address to dial: Host and Port joined.
func (p *proc) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// Signal sends sig to the process.
func (p *proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code; it fails the test if it does not exit in time.
func (p *proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %v; stderr:\n%s", p.name, timeout, p.Stderr)
		return -1
	}
}

// Stop sends sig and waits (bounded) for the exit code.
func (p *proc) Stop(sig os.Signal) int {
	p.t.Helper()
	p.Signal(sig)
	return p.Wait(stopTimeout)
}

// Lines returns the complete stderr lines so far.
func (p *proc) Lines() []string { return p.Stderr.completeLines() }

// WaitLine waits (bounded) for a stderr line matching re and returns it.
func (p *proc) WaitLine(re *regexp.Regexp, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range p.Lines() {
			if re.MatchString(line) {
				return line
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no stderr line matching %q within %v; stderr:\n%s", p.name, re, timeout, p.Stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startServer runs `echoctl serve --addr HOST:0 ARGS...` and waits until it
// is listening.
func startServer(t *testing.T, s spec, host string, args ...string) *proc {
	t.Helper()
	args = append([]string{"serve", "--addr", net.JoinHostPort(host, "0")}, args...)
	cmd := s.command(t, context.Background(), echoctlBin, args...)
	p := startProc(t, cmd, syscall.SIGTERM)
	if host != "" {
		p.Host = host // the dialable literal, whatever the log says
	}
	return p
}

// needIPv6 skips the test when ::1 cannot be listened on.
func needIPv6(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
}

// unusedPort returns a loopback port that was free a moment ago: it binds
// 127.0.0.1:0 and closes the listener.
func unusedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// fakeServer is a TCP server written in the test that misbehaves: each
// accepted connection is passed to handle, with a stop channel closed on
// cleanup. It returns the address to dial.
func fakeServer(t *testing.T, handle func(c *net.TCPConn, stop <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(runTimeout))
				handle(c.(*net.TCPConn), stop)
			}()
		}
	}()
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		wg.Wait() // bounded by each connection's deadline
	})
	return ln.Addr().String()
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pyQuote formats b as Python's repr(bytes) does, written here
// independently of pkg/echo so that the tests check echoctl's quoting.
func pyQuote(b []byte) string {
	q := byte('\'')
	if bytes.IndexByte(b, '\'') >= 0 && bytes.IndexByte(b, '"') < 0 {
		q = '"'
	}
	var sb strings.Builder
	sb.WriteByte('b')
	sb.WriteByte(q)
	for _, c := range b {
		switch {
		case c == q || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte(q)
	return sb.String()
}

// pyUnquote parses a Python bytes literal as repr(bytes) writes it.
func pyUnquote(s string) ([]byte, error) {
	if len(s) < 3 || s[0] != 'b' || (s[1] != '\'' && s[1] != '"') || s[len(s)-1] != s[1] {
		return nil, fmt.Errorf("not a bytes literal: %q", s)
	}
	body := s[2 : len(s)-1]
	var out []byte
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(body) {
			return nil, fmt.Errorf("trailing backslash in %q", s)
		}
		switch body[i] {
		case '\\', '\'', '"':
			out = append(out, body[i])
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 'x':
			if i+2 >= len(body) {
				return nil, fmt.Errorf("short \\x escape in %q", s)
			}
			v, err := strconv.ParseUint(body[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape in %q", s)
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c in %q", body[i], s)
		}
	}
	return out, nil
}

// dataLineRE matches a text-format data line: "NAME: VERB b'...'".
var dataLineRE = regexp.MustCompile(`^(\S+): (received|sent|sending) (b['"].*['"])$`)

// dataChunks returns, in order, the data of every text-format line of
// logger (any logger if "") with verb.
func dataChunks(t *testing.T, lines []string, logger, verb string) [][]byte {
	t.Helper()
	var chunks [][]byte
	for _, line := range lines {
		m := dataLineRE.FindStringSubmatch(line)
		if m == nil || m[2] != verb || (logger != "" && m[1] != logger) {
			continue
		}
		b, err := pyUnquote(m[3])
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		chunks = append(chunks, b)
	}
	return chunks
}

func maxLen(chunks [][]byte) int {
	n := 0
	for _, c := range chunks {
		n = max(n, len(c))
	}
	return n
}

// count returns how many of lines equal want.
func count(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}

// reLine compiles a regular expression for a log line.
func reLine(expr string) *regexp.Regexp { return regexp.MustCompile(expr) }

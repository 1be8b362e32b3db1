//go:build linux

package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// ioTimeout bounds each blocking step of a test.
const ioTimeout = 10 * time.Second

// binary is the echoctl binary built by TestMain.
var binary string

// TestMain builds echoctl once for every test, then checks that no test
// leaves a goroutine behind.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "echoctl-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "echoctl")
	build := exec.Command("go", "build", "-o", binary, "github.com/echoctl/echoctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build echoctl:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// logLine is one line of the server's JSON log.
type logLine struct {
	Level     string   `json:"level"`
	Logger    string   `json:"logger"`
	Message   string   `json:"message"`
	Reason    string   `json:"reason"`
	Addr      string   `json:"addr"`
	Listeners []string `json:"listeners"`
	// Unlogged is a rate-limited line's count of lines held back.
	Unlogged int `json:"refused_unlogged"`
}

// server is a running `echoctl serve`.
type server struct {
	cmd         *exec.Cmd
	addr        string // the echo listener, host:port
	metricsAddr string // the metrics server, host:port
	done        chan struct{}
	exitErr     error

	mu      sync.Mutex
	lines   []logLine
	raw     bytes.Buffer
	changed chan struct{} // closed when the next line arrives (waitLogs)
}

// startServer runs `echoctl serve` on 127.0.0.1 with ports the kernel
// picks, JSON logs and metrics on, plus args; it waits until both
// listeners are up. With ulimit > 0 it runs under `ulimit -n ULIMIT`.
func startServer(t testing.TB, ulimit int, args ...string) *server {
	t.Helper()
	return startServerAt(t, ulimit, "127.0.0.1:0", "127.0.0.1:0", args...)
}

// startQuietServer is startServer for a server that logs only warnings:
// it learns its addresses from free ports picked beforehand rather than
// from the log.
func startQuietServer(t testing.TB, args ...string) *server {
	t.Helper()
	return startServerAt(t, 0, freePort(t), freePort(t), append([]string{"--log-level", "warn"}, args...)...)
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startServerAt(t testing.TB, ulimit int, addr, metricsAddr string, args ...string) *server {
	t.Helper()
	all := append([]string{"serve", "--addr", addr, "--metrics-addr", metricsAddr, "--log-format", "json"}, args...)
	var cmd *exec.Cmd
	if ulimit > 0 {
		script := fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, ulimit)
		cmd = exec.Command("bash", append([]string{"-c", script, binary}, all...)...)
	} else {
		cmd = exec.Command(binary, all...)
	}
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	var readyOnce sync.Once
	if !strings.HasSuffix(addr, ":0") && !strings.HasSuffix(metricsAddr, ":0") {
		s.addr, s.metricsAddr = addr, metricsAddr
		go func() {
			for {
				select {
				case <-s.done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				resp, err := httpClient.Get("http://" + metricsAddr + "/readyz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						readyOnce.Do(func() { close(ready) })
						return
					}
				}
			}
		}()
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l logLine
			json.Unmarshal(sc.Bytes(), &l)
			s.mu.Lock()
			s.lines = append(s.lines, l)
			s.raw.Write(sc.Bytes())
			s.raw.WriteByte('\n')
			if l.Logger == "metrics" && l.Addr != "" {
				s.metricsAddr = l.Addr
			}
			if l.Logger == "main" && len(l.Listeners) > 0 {
				s.addr = l.Listeners[0]
			}
			if s.addr != "" && s.metricsAddr != "" {
				readyOnce.Do(func() { close(ready) })
			}
			if s.changed != nil {
				close(s.changed)
				s.changed = nil
			}
			s.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		s.exitErr = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("echoctl serve exited before it was ready: %v\n%s", s.exitErr, s.logs())
	case <-time.After(ioTimeout):
		t.Fatalf("echoctl serve not ready after %v:\n%s", ioTimeout, s.logs())
	}
	return s
}

// cleanEnv is the environment without ECHOCTL_* variables, and with HOME
// and XDG_CONFIG_HOME pointing nowhere, so that no config file is read.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ECHOCTL_") || name == "HOME" || name == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME=/nonexistent", "XDG_CONFIG_HOME=/nonexistent")
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

// countLogs counts the log lines that match.
func (s *server) countLogs(match func(logLine) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if match(l) {
			n++
		}
	}
	return n
}

// waitLog waits until a log line matches.
func (s *server) waitLog(t testing.TB, what string, match func(logLine) bool) {
	t.Helper()
	s.waitLogs(t, what, 1, match)
}

// waitLogs waits until n log lines match, waking at each line the server
// logs.
func (s *server) waitLogs(t testing.TB, what string, n int, match func(logLine) bool) {
	t.Helper()
	deadline := time.NewTimer(ioTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		if s.countLogs(match) >= n {
			return
		}
		select {
		case <-changed:
		case <-s.done:
			if s.countLogs(match) < n {
				t.Fatalf("echoctl serve exited with fewer than %d log lines %s:\n%s", n, what, s.logs())
			}
			return
		case <-deadline.C:
			t.Fatalf("fewer than %d log lines %s after %v:\n%s", n, what, ioTimeout, s.logs())
		}
	}
}

// logBarrier makes a connection from 127.0.0.1, closes it, and waits for
// the server's "closing" line about it. The server's log is buffered but
// kept in order (logging.Buffered), so every line it logged before is then
// written too: counts of lines taken after it are final.
func (s *server) logBarrier(t testing.TB) {
	t.Helper()
	c := dialFrom(t, "127.0.0.1", s.addr)
	roundTrip(t, c, []byte("barrier"))
	name := "echo_127.0.0.1_" + strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
	c.Close()
	s.waitLog(t, "closing "+name, func(l logLine) bool { return l.Logger == name && l.Message == "closing" })
}

// signal sends sig to the server.
func (s *server) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait waits up to d for the server to exit and returns its exit code.
func (s *server) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		t.Fatalf("echoctl serve still running after %v:\n%s", d, s.logs())
	}
	var ee *exec.ExitError
	if errors.As(s.exitErr, &ee) {
		return ee.ExitCode()
	}
	if s.exitErr != nil {
		t.Fatal(s.exitErr)
	}
	return 0
}

// pid returns the server's process id (through bash's exec it is the same).
func (s *server) pid() int { return s.cmd.Process.Pid }

// httpClient scrapes without keep-alive, so that a scrape leaves no
// connection (and no goroutine) open in the server between scrapes.
var httpClient = &http.Client{
	Timeout:   ioTimeout,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// get fetches path from the metrics server.
func (s *server) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get("http://" + s.metricsAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// metrics are scraped samples, keyed by name and labels as exposed, such
// as `echoctl_connections_closed_total{listener="127.0.0.1:1",reason="eof"}`.
type metrics map[string]float64

// scrape reads /metrics.
func (s *server) scrape(t testing.TB) metrics {
	t.Helper()
	code, body := s.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	m := metrics{}
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// conn returns the value of an echoctl connection metric of the server's
// listener, with reason if not "".
func (s *server) conn(m metrics, name, reason string) float64 {
	key := fmt.Sprintf("%s{listener=%q}", name, s.addr)
	if reason != "" {
		key = fmt.Sprintf("%s{listener=%q,reason=%q}", name, s.addr, reason)
	}
	v, ok := m[key]
	if !ok {
		return -1
	}
	return v
}

// waitMetric polls until the metric reaches want. Nothing announces a
// metric's change from another process: it scrapes every 20ms, up to
// ioTimeout.
func (s *server) waitMetric(t testing.TB, name, reason string, want float64) metrics {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		m := s.scrape(t)
		if got := s.conn(m, name, reason); got == want {
			return m
		} else if time.Now().After(deadline) {
			t.Fatalf("%s{reason=%q} = %v after %v, want %v", name, reason, got, ioTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(t testing.TB, src, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect from %q: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes p to c and reads its echo.
func roundTrip(t testing.TB, c net.Conn, p []byte) {
	t.Helper()
	if err := tryRoundTrip(c, p); err != nil {
		t.Fatal(err)
	}
}

func tryRoundTrip(c net.Conn, p []byte) error {
	c.SetDeadline(time.Now().Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(p); err != nil {
		return err
	}
	got := make([]byte, len(p))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, p) {
		return fmt.Errorf("echo = %q, want %q", got, p)
	}
	return nil
}

// expectClosed checks that the server closed c at once without echoing.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	n, err := c.Read(make([]byte, 8))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("refused connection: read %d, %v; want end of stream or reset at once", n, err)
	}
}

// exchange runs one seed exchange as `echoctl send` does: write, half-close,
// read the echo to the end.
func exchange(ctx context.Context, addr string, msg []byte) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return exchangeOn(ctx, c, msg)
}

// exchangeOn runs the exchange on c and closes it.
func exchangeOn(ctx context.Context, c net.Conn, msg []byte) error {
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo of %d bytes differs: got %d bytes", len(msg), len(got))
	}
	return nil
}

// pattern is the data streamed by tests: random, so that a misplaced
// chunk shows, and long enough that offsets into it rarely repeat.
var pattern = func() []byte {
	rng := rand.New(rand.NewPCG(6, 6))
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}()

// patternAt returns the n bytes of the endless repetition of pattern that
// start at offset off, copied into buf.
func patternAt(buf []byte, off int64) []byte {
	out := buf[:0]
	for len(out) < cap(buf) {
		i := int((off + int64(len(out))) % int64(len(pattern)))
		out = append(out, pattern[i:min(len(pattern), i+cap(buf)-len(out))]...)
	}
	return out
}

// procStatus reads a field, in kB, of /proc/PID/status.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// openFDs counts the open descriptors of a process.
func openFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// isReset reports whether err is a connection reset or broken pipe.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

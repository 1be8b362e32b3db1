package main_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	closingServerRE = regexp.MustCompile(`^main: closing server$`)
	acceptedLineRE  = regexp.MustCompile(`^(echo_127\.0\.0\.1_\d+): connection accepted$`)
)

// dialAccepted connects to srv and waits until the server has logged the
// connection (so it is tracked before a test signals the server). It
// returns the connection and the server's logger name for it.
func dialAccepted(t *testing.T, srv *proc) (*net.TCPConn, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(runTimeout))
	name := "echo_127.0.0.1_" + portOf(c.LocalAddr())
	srv.WaitLine(regexp.MustCompile(`^`+regexp.QuoteMeta(name)+`: connection accepted$`), readyTimeout)
	return c.(*net.TCPConn), name
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

// indexOf returns the index of the first line equal to want, or -1.
func indexOf(lines []string, want string) int { return slices.Index(lines, want) }

// waitRefused waits (bounded) until new connections to addr are refused.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("dial %s during shutdown: %v, want connection refused", addr, err)
			}
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Errorf("%s still accepts connections 5s after the shutdown started", addr)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownNoConnections: SIGTERM and SIGINT stop an idle server at
// once with exit 0; its last line is "main: closing server".
func TestShutdownNoConnections(t *testing.T) {
	t.Parallel()
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, spec{}, "127.0.0.1", "--shutdown-timeout", "5s")
			start := time.Now()
			if code := srv.Stop(sig); code != 0 {
				t.Fatalf("exit %d, want 0; stderr:\n%s", code, srv.Stderr)
			}
			if d := srv.exitedAt.Sub(start); d > 3*time.Second {
				t.Errorf("took %v to exit with no connection open", d)
			}
			lines := srv.Lines()
			if lines[len(lines)-1] != "main: closing server" || count(lines, "main: closing server") != 1 {
				t.Errorf("stderr should end with one 'main: closing server':\n%s", srv.Stderr)
			}
		})
	}
}

// TestShutdownIdleConnection: with an idle connection open, SIGTERM or
// SIGINT stops accepting at once, waits --shutdown-timeout for the
// connection, then ends it with a FIN (the peer reads EOF, not a reset)
// and exits 0.
func TestShutdownIdleConnection(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = time.Second
	const slack = 4 * time.Second // drainLinger (1s) and a loaded machine
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, spec{}, "127.0.0.1", "--shutdown-timeout", shutdownTimeout.String())
			c, name := dialAccepted(t, srv)

			eof := make(chan error, 1)
			go func() {
				n, err := c.Read(make([]byte, 1))
				if n > 0 {
					err = errors.New("read data from an idle connection")
				}
				eof <- err
			}()
			start := time.Now()
			srv.Signal(sig)
			srv.WaitLine(closingServerRE, readyTimeout)
			waitRefused(t, srv.Addr())

			var readErr error
			select {
			case readErr = <-eof:
			case <-time.After(shutdownTimeout + slack):
				t.Fatalf("idle connection not ended %v after %v", shutdownTimeout+slack, sig)
			}
			ended := time.Since(start)
			if readErr != io.EOF {
				t.Errorf("idle connection ended with %v, want EOF (a FIN, not a reset)", readErr)
			}
			if ended < shutdownTimeout-100*time.Millisecond {
				t.Errorf("idle connection ended %v after %v, before --shutdown-timeout %v", ended, sig, shutdownTimeout)
			}
			c.Close()

			if code := srv.Wait(shutdownTimeout + slack); code != 0 {
				t.Errorf("exit %d, want 0; stderr:\n%s", code, srv.Stderr)
			}
			if d := srv.exitedAt.Sub(start); d > shutdownTimeout+slack {
				t.Errorf("exited %v after %v, want within %v", d, sig, shutdownTimeout+slack)
			}
			lines := srv.Lines()
			iClosing, iConn := indexOf(lines, "main: closing server"), indexOf(lines, name+": closing")
			if count(lines, "main: closing server") != 1 || iConn < iClosing {
				t.Errorf("want one 'main: closing server', then '%s: closing':\n%s", name, srv.Stderr)
			}
			if !strings.Contains(lines[len(lines)-1], "shutdown timeout") {
				t.Errorf("last line %q should say the shutdown timeout was reached", lines[len(lines)-1])
			}
		})
	}
}

// streamer writes random data to c until told to stop and reads the echo
// concurrently.
type streamer struct {
	c         *net.TCPConn
	sent      bytes.Buffer
	stop      chan struct{}
	wrote     chan error
	echoed    chan []byte
	readErr   error
	n         atomic.Int64  // bytes written so far
	wroteMore chan struct{} // signalled after each write
	flowing   chan struct{} // closed when the first echo comes back
}

func startStreamer(c *net.TCPConn) *streamer {
	s := &streamer{c: c, stop: make(chan struct{}), wrote: make(chan error, 1), echoed: make(chan []byte, 1),
		wroteMore: make(chan struct{}, 1), flowing: make(chan struct{})}
	go func() {
		var got []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 && len(got) == 0 {
				close(s.flowing)
			}
			got = append(got, buf[:n]...)
			if err != nil {
				if err != io.EOF {
					s.readErr = err
				}
				s.echoed <- got
				return
			}
		}
	}()
	go func() {
		chunk := make([]byte, 4<<10)
		for {
			select {
			case <-s.stop:
				s.wrote <- nil
				return
			default:
			}
			rand.Read(chunk)
			n, err := c.Write(chunk)
			s.sent.Write(chunk[:n])
			s.n.Add(int64(n))
			select {
			case s.wroteMore <- struct{}{}:
			default:
			}
			if err != nil {
				s.wrote <- err
				return
			}
			// Not a wait: the client under test sends steadily, 4 KiB
			// every 2ms, rather than as fast as it can.
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return s
}

// waitFlowing waits (bounded) until the echo of what s sends comes back.
func (s *streamer) waitFlowing(t *testing.T) {
	t.Helper()
	select {
	case <-s.flowing:
	case <-time.After(readyTimeout):
		t.Fatalf("no echo %v after the client began sending", readyTimeout)
	}
}

// waitSent waits (bounded) until s has written at least n bytes.
func (s *streamer) waitSent(t *testing.T, n int64) {
	t.Helper()
	deadline := time.After(readyTimeout)
	for s.n.Load() < n {
		select {
		case <-s.wroteMore:
		case <-deadline:
			t.Fatalf("the client wrote %d bytes in %v, want %d", s.n.Load(), readyTimeout, n)
		}
	}
}

// TestShutdownWhileSending: a connection that is still sending when the
// server is signalled gets every byte it sends back, then EOF, as long as
// it finishes within --shutdown-timeout; the server exits 0 as soon as it
// is done, without waiting out the timeout.
func TestShutdownWhileSending(t *testing.T) {
	t.Parallel()
	srv := startServer(t, spec{}, "127.0.0.1", "--shutdown-timeout", "8s")
	c, name := dialAccepted(t, srv)
	s := startStreamer(c)

	s.waitFlowing(t)
	start := time.Now()
	srv.Signal(syscall.SIGTERM)
	srv.WaitLine(closingServerRE, readyTimeout)
	atShutdown := s.n.Load()
	waitRefused(t, srv.Addr())
	s.waitSent(t, s.n.Load()+128<<10) // keep sending during the shutdown
	close(s.stop)
	if err := <-s.wrote; err != nil {
		t.Fatalf("write during shutdown: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got := <-s.echoed // bounded by the connection's deadline
	if s.readErr != nil {
		t.Errorf("read: %v, want every byte then EOF", s.readErr)
	}
	if !bytes.Equal(got, s.sent.Bytes()) {
		t.Errorf("echo differs from what was sent: got %d bytes, sent %d, first difference at %d", len(got), s.sent.Len(), firstDiff(got, s.sent.Bytes()))
	}
	if code := srv.Wait(stopTimeout); code != 0 {
		t.Errorf("exit %d, want 0; stderr:\n%s", code, srv.Stderr)
	}
	if d := srv.exitedAt.Sub(start); d > 6*time.Second {
		t.Errorf("exited %v after SIGTERM: it should not wait out --shutdown-timeout 8s once the connection is done", d)
	}
	lines := srv.Lines()
	iClosing, iConn := indexOf(lines, "main: closing server"), indexOf(lines, name+": closing")
	if count(lines, "main: closing server") != 1 || iConn < iClosing {
		t.Errorf("want one 'main: closing server', then '%s: closing':\n%s", name, srv.Stderr)
	}
	if last := lines[len(lines)-1]; last != name+": closing" {
		t.Errorf("last line %q, want %q (no timeout warning)", last, name+": closing")
	}
	if int64(s.sent.Len()) <= atShutdown {
		t.Errorf("nothing was sent after the shutdown started; the test did not test it")
	}
	t.Logf("sent and echoed %d bytes, %d of them after 'closing server'", s.sent.Len(), int64(s.sent.Len())-atShutdown)
}

// TestShutdownTimeoutWhileSending: a connection that keeps sending past
// --shutdown-timeout gets back a prefix of what it sent (everything the
// server read), then a clean EOF; the server exits 0.
func TestShutdownTimeoutWhileSending(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = time.Second
	srv := startServer(t, spec{}, "127.0.0.1", "--shutdown-timeout", shutdownTimeout.String())
	c, name := dialAccepted(t, srv)
	s := startStreamer(c)

	s.waitFlowing(t)
	start := time.Now()
	srv.Signal(syscall.SIGTERM)
	got := <-s.echoed // the server's FIN; bounded by the connection's deadline
	ended := time.Since(start)
	close(s.stop)
	<-s.wrote
	c.Close()

	if s.readErr != nil {
		t.Errorf("read: %v, want a clean EOF", s.readErr)
	}
	if ended < shutdownTimeout-100*time.Millisecond {
		t.Errorf("connection ended %v after SIGTERM, before --shutdown-timeout %v", ended, shutdownTimeout)
	}
	sent := s.sent.Bytes()
	if len(got) == 0 || !bytes.HasPrefix(sent, got) {
		t.Errorf("echo (%d bytes) is not a non-empty prefix of what was sent (%d bytes); first difference at %d", len(got), len(sent), firstDiff(got, sent))
	}
	if code := srv.Wait(stopTimeout); code != 0 {
		t.Errorf("exit %d, want 0; stderr:\n%s", code, srv.Stderr)
	}
	if d := srv.exitedAt.Sub(start); d > shutdownTimeout+4*time.Second {
		t.Errorf("exited %v after SIGTERM with --shutdown-timeout %v", d, shutdownTimeout)
	}
	lines := srv.Lines()
	if indexOf(lines, name+": closing") < indexOf(lines, "main: closing server") || !strings.Contains(lines[len(lines)-1], "shutdown timeout") {
		t.Errorf("want 'main: closing server', '%s: closing', then the timeout warning:\n%s", name, srv.Stderr)
	}
}

// TestShutdownSecondSignal: a second signal during a graceful shutdown
// kills the server at once.
func TestShutdownSecondSignal(t *testing.T) {
	t.Parallel()
	srv := startServer(t, spec{}, "127.0.0.1", "--shutdown-timeout", "30s")
	dialAccepted(t, srv)
	srv.Signal(syscall.SIGTERM)
	srv.WaitLine(closingServerRE, readyTimeout)
	start := time.Now()
	srv.Signal(syscall.SIGINT)
	code := srv.Wait(5 * time.Second)
	if code == 0 {
		t.Errorf("exit 0 after a second signal, want a non-zero status (killed)")
	}
	t.Logf("exited with %d %v after the second signal", code, time.Since(start).Round(time.Millisecond))
}

package main_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// A log reader that stops reading, or goes, must not stop the server: a
// pipeline such as `echoctl serve 2>&1 | head` or a stuck log shipper.

// exitOf is a process's exit code, once done is closed.
type exitOf struct {
	done chan struct{}
	code int
}

// serveLoggingToPipe starts serve with its stderr into a pipe, reads the
// start-up line from it to learn the port, and returns the process, the
// pipe's read end, the address and its exit.
func serveLoggingToPipe(t *testing.T) (*os.Process, *os.File, string, *exitOf) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := spec{}.command(t, context.Background(), echoctlBin, "serve", "--addr", "127.0.0.1:0")
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := &exitOf{done: make(chan struct{})}
	go func() {
		exited.code = exitCode(cmd.Wait())
		close(exited.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		r.Close()
		<-exited.done
	})
	r.SetReadDeadline(time.Now().Add(readyTimeout))
	line, err := bufio.NewReader(io.LimitReader(r, 200)).ReadString('\n')
	m := regexp.MustCompile(`port (\d+)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("start-up line %q, %v", line, err)
	}
	return cmd.Process, r, net.JoinHostPort("127.0.0.1", m[1]), exited
}

// echoOnce makes one connection and checks its echo.
func echoOnce(t *testing.T, addr string, msg []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, readyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(readyTimeout))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, %v; want %q", got, err, msg)
	}
}

// waitExit waits for serve to exit after SIGTERM and returns its code.
func waitExit(t *testing.T, p *os.Process, exited *exitOf) int {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	select {
	case <-exited.done:
		return exited.code
	case <-time.After(stopTimeout):
		t.Fatalf("serve still running %v after SIGTERM", stopTimeout)
		return -1
	}
}

// TestServeLogReaderGone: once the log's reader has gone, serve goes on
// serving (no SIGPIPE, exit 141) and exits 0 on SIGTERM.
func TestServeLogReaderGone(t *testing.T) {
	p, r, addr, exited := serveLoggingToPipe(t)
	r.Close()
	for i := range 3 { // the first log lines after the reader went meet EPIPE
		echoOnce(t, addr, []byte{'a' + byte(i)})
	}
	if code := waitExit(t, p, exited); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// TestServeLogReaderStalled: a log that nobody reads fills the pipe and
// what serve holds; serve still serves every connection, at once, and
// exits 0 on SIGTERM, giving up on the log after a bounded wait.
func TestServeLogReaderStalled(t *testing.T) {
	p, _, addr, exited := serveLoggingToPipe(t)
	// Two lines a connection, some 60 bytes each: 3,000 connections are
	// far more than a 64 KiB pipe and 64 KiB held.
	for i := range 3000 {
		echoOnce(t, addr, []byte{byte(i)})
	}
	if code := waitExit(t, p, exited); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

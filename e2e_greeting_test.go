package main_test

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestServeGreeting runs `serve --greeting` as a user would, with a UDP
// address beside the TCP one: a plain client reads the greeting line, with
// the host name and the variable read at start, then the exact echo of
// what it sent with the connect; the -v transcript shows one "sending
// greeting" line and the echo's data lines, never the greeting as data;
// the UDP address answers a datagram with itself, and serve says once
// that it does not greet there.
func TestServeGreeting(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	p := startServer(t, spec{Env: []string{"ZONE=eu-west-1a"}}, "127.0.0.1",
		"--addr", "udp://127.0.0.1:0", "--greeting", "backend {hostname} {env:ZONE}", "-v")

	c, err := net.DialTimeout("tcp", p.Addr(), runTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(runTimeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if want := "backend " + host + " eu-west-1a\nping"; err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}

	var udpAddr string
	for _, l := range p.Lines() {
		if m := startingUpRE.FindStringSubmatch(l); m != nil && strings.HasSuffix(l, "(udp)") {
			udpAddr = net.JoinHostPort("127.0.0.1", m[2])
		}
	}
	u, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatalf("udp %q: %v\n%s", udpAddr, err, p.Stderr)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(runTimeout))
	u.Write([]byte("ping"))
	buf := make([]byte, 2048)
	n, err := u.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("UDP answer %q, %v; want %q alone", buf[:n], err, "ping")
	}

	p.WaitLine(reLine(`: closing$`), readyTimeout)
	lines := p.Lines()
	if n := count(lines, "main: no greeting on udp://"+udpAddr+": an answer is never larger than the datagram it answers (no amplification)"); n != 1 {
		t.Errorf("%d lines say there is no greeting on UDP, want 1:\n%s", n, p.Stderr)
	}
	name := "echo_" + strings.ReplaceAll(c.LocalAddr().String(), ":", "_")
	var transcript []string
	for _, l := range lines {
		if msg, ok := strings.CutPrefix(l, name+": "); ok {
			transcript = append(transcript, msg)
		}
	}
	want := []string{"connection accepted", "sending greeting", "received b'ping'", "sent b'ping'", "closing"}
	if strings.Join(transcript, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript of %s:\n%s\nwant:\n%s", name, strings.Join(transcript, "\n"), strings.Join(want, "\n"))
	}
}

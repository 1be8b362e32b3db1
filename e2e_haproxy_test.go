package main_test

// HAProxy in front of three `echoctl serve --greeting` backends, as users
// put echoctl behind a balancer (docs/load-balancers.md): one backend takes
// PROXY v1 (send-proxy), one v2 (send-proxy-v2), one v2 over TLS
// (send-proxy-v2-ssl, the header before the handshake); round robin, with
// check-send-proxy health checks. HAProxy's own connections come from
// 127.0.0.3 (its `source`), the clients' from 127.0.0.1, so a backend that
// logs 127.0.0.1 learned the client from the header.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/testtool"
)

// haproxyVia is the address HAProxy connects to the backends from.
const haproxyVia = "127.0.0.3"

// jsonLog is one line of `serve --log-format json`.
type jsonLog struct {
	Level   string `json:"level"`
	Logger  string `json:"logger"`
	Message string `json:"message"`
	Via     string `json:"via"`
	Reason  string `json:"reason"`
}

// jsonLogs decodes the complete JSON lines a server has logged.
func jsonLogs(t *testing.T, p *proc) []jsonLog {
	t.Helper()
	var out []jsonLog
	for _, line := range p.Lines() {
		var l jsonLog
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%s: log line %q is not JSON: %v", p.name, line, err)
		}
		out = append(out, l)
	}
	return out
}

// waitLogs waits (bounded) until n of p's log lines match.
func waitLogs(t *testing.T, p *proc, what string, n int, match func(jsonLog) bool) []jsonLog {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		var got []jsonLog
		for _, l := range jsonLogs(t, p) {
			if match(l) {
				got = append(got, l)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d log lines %s within %v; stderr:\n%s", p.name, len(got), n, what, readyTimeout, p.Stderr)
		}
		time.Sleep(10 * time.Millisecond) // polling a log, as WaitLine does
	}
}

// lbBackend is one echoctl serve behind HAProxy.
type lbBackend struct {
	name string
	*proc
}

// startBackend runs `echoctl serve` on addr (a URL with its port 0) with a
// greeting naming it, logging JSON, and returns it with its port.
func startBackend(t *testing.T, name, addr string, extra ...string) lbBackend {
	t.Helper()
	args := append([]string{"serve", "--addr", addr, "--log-format", "json", "--greeting", name + " saw {peer} via {via}"}, extra...)
	cmd := spec{}.command(t, context.Background(), echoctlBin, args...)
	p := startProc(t, cmd, syscall.SIGTERM)
	return lbBackend{name: name, proc: p}
}

// checkSpread checks what `send --count N --greeting` through a balancer
// showed (table, its output) and what the backends logged: each backend
// answered each of the connections, saw the send process (127.0.0.1) as
// the client, with the balancer's address (via, an IP) in a via field, and
// warned of nothing, the balancer's health checks included.
func checkSpread(t *testing.T, table string, backends []lbBackend, via string, each int) {
	t.Helper()
	for _, b := range backends {
		row := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(b.name) + ` saw 127\.0\.0\.1:\d+ via ` + regexp.QuoteMeta(via) + `:\d+\s+(\d+)\s`)
		n := 0
		for _, m := range row.FindAllStringSubmatch(table, -1) {
			k, _ := strconv.Atoi(m[1])
			n += k
		}
		if n != each {
			t.Errorf("%s answered %d connections, want %d; send's output:\n%s", b.name, n, each, table)
		}
		closed := waitLogs(t, b.proc, "closing a client's connection", each, func(l jsonLog) bool {
			return l.Message == "closing" && strings.HasPrefix(l.Logger, "echo_127.0.0.1_")
		})
		for _, l := range closed {
			if !strings.HasPrefix(l.Via, via+":") {
				t.Errorf("%s: %s closed with via %q, want the balancer's %s:PORT", b.name, l.Logger, l.Via, via)
			}
		}
		for _, l := range jsonLogs(t, b.proc) {
			if l.Level == "warn" || l.Level == "error" {
				t.Errorf("%s logged %s %q (%s)", b.name, l.Level, l.Message, l.Logger)
			}
		}
	}
}

const haproxyConfig = `global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:%d
    default_backend echoctl
backend echoctl
    balance roundrobin
    default-server check check-send-proxy inter 100ms rise 1 fall 3 source ` + haproxyVia + `
    server v1 127.0.0.1:%d send-proxy
    server v2 127.0.0.1:%d send-proxy-v2
    server v2ssl 127.0.0.1:%d send-proxy-v2-ssl ssl verify none
`

func TestHAProxyInFrontOfBackends(t *testing.T) {
	haproxy := testtool.Need(t, "haproxy", "the load-balancer tests")
	backends := []lbBackend{
		startBackend(t, "backend-v1", "tcp://127.0.0.1:0?proxy-protocol=on"),
		startBackend(t, "backend-v2", "tcp://127.0.0.1:0?proxy-protocol=on"),
		startBackend(t, "backend-v2ssl", "tls://127.0.0.1:0?proxy-protocol=on", "--tls-self-signed"),
	}
	front := unusedPort(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "haproxy.cfg", fmt.Sprintf(haproxyConfig, front, backends[0].Port, backends[1].Port, backends[2].Port))
	if out, err := exec.Command(haproxy, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	hp := spec{}.command(t, context.Background(), haproxy, "-db", "-f", cfg)
	lb := &proc{t: t, name: "haproxy", cmd: hp, stopSig: syscall.SIGTERM, Stdout: &lineBuffer{}, Stderr: &lineBuffer{}, done: make(chan struct{})}
	hp.Stdout, hp.Stderr = lb.Stdout, lb.Stderr
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := hp.Wait()
		lb.code = exitCode(err)
		close(lb.done)
	}()
	t.Cleanup(lb.cleanup)

	// Health checks (LOCAL headers from 127.0.0.3) reach every backend and
	// are served quietly: HAProxy then has them all up.
	for _, b := range backends {
		waitLogs(t, b.proc, "closing a health check", 2, func(l jsonLog) bool {
			return l.Message == "closing" && strings.HasPrefix(l.Logger, "echo_"+haproxyVia+"_")
		})
	}

	// Thirty exchanges through HAProxy: ten to each backend, which logs the
	// client's address (127.0.0.1, the send process) and HAProxy's as via;
	// no warning, health checks included.
	r := echoctl(t, spec{}, "send", "--addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(front)), "--greeting", "--count", "30", "hello")
	if r.Code != 0 {
		t.Fatalf("send --count 30 through haproxy: %s", r)
	}
	checkSpread(t, string(r.Stdout)+string(r.Stderr), backends, haproxyVia, 10)

	// The client's port too: a connection from this process to each
	// backend in turn is named, in the greeting and in the backend's log,
	// by this end's own address and port, never HAProxy's.
	for range backends {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(front)), readyTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(readyTimeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		own := c.LocalAddr().(*net.TCPAddr)
		if err != nil || !strings.Contains(line, " saw "+own.String()+" via "+haproxyVia+":") {
			t.Errorf("greeting %q, %v; want it to name this connection's own end, %s, via %s", line, err, own, haproxyVia)
			continue
		}
		for _, b := range backends {
			if strings.HasPrefix(line, b.name+" ") {
				waitLogs(t, b.proc, "the client's own port in the log", 1, func(l jsonLog) bool {
					return l.Message == "closing" && l.Logger == "echo_127.0.0.1_"+strconv.Itoa(own.Port)
				})
			}
		}
	}

	// A backend that expects PROXY refuses a client that connects directly.
	direct := backends[1]
	c, err := net.DialTimeout("tcp", direct.Addr(), readyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "no header here\r\n")
	c.SetReadDeadline(time.Now().Add(readyTimeout))
	if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Errorf("a direct client without a header got %q, want the connection closed", line)
	}
	waitLogs(t, direct.proc, "warning about the missing header", 1, func(l jsonLog) bool { return l.Level == "warn" })

	// send --proxy-protocol v2 straight to a backend: it logs the forged
	// source as the client.
	r = echoctl(t, spec{}, "send", "--addr", direct.Addr(), "--greeting", "--proxy-protocol", "v2", "--proxy-source", "203.0.113.7:41000", "forged")
	if r.Code != 0 {
		t.Fatalf("send --proxy-protocol v2: %s", r)
	}
	if !strings.Contains(string(r.Stderr), "backend-v2 saw 203.0.113.7:41000 via 127.0.0.1:") {
		t.Errorf("send --greeting did not show the forged source as the peer:\n%s", r)
	}
	waitLogs(t, direct.proc, "closing the forged client", 1, func(l jsonLog) bool {
		return l.Message == "closing" && l.Logger == "echo_203.0.113.7_41000"
	})
}

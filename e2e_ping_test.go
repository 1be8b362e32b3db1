package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/echoctl/echoctl/internal/testtool"
)

// TestPingPeers: echoctl ping against echoctl serve on every transport, and
// against servers echoctl did not write: socat (TCP and UDP) and the seed's
// Python server. Every probe is answered and verified.
func TestPingPeers(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "e.sock")
	_, bound := startServeAddrs(t, spec{}, []string{"tcp://127.0.0.1:0", "udp://127.0.0.1:0", "unix://" + sock, "tls://127.0.0.1:0"}, "--tls-self-signed")
	peers := []struct {
		name string
		addr func(t *testing.T) string
		args []string
	}{
		{"echoctl tcp", func(*testing.T) string { return bound[0] }, nil},
		{"echoctl tcp reuse", func(*testing.T) string { return bound[0] }, []string{"--reuse"}},
		{"echoctl udp", func(*testing.T) string { return bound[1] }, nil},
		{"echoctl unix", func(*testing.T) string { return bound[2] }, nil},
		{"echoctl tls", func(*testing.T) string { return bound[3] }, []string{"--tls-insecure"}},
		{"seed server", func(t *testing.T) string { return startSeedServer(t).Addr() }, nil},
		{"socat tcp", func(t *testing.T) string { return startSocat(t, "TCP-LISTEN") }, nil},
		{"socat udp", func(t *testing.T) string { return "udp://" + startSocat(t, "UDP-LISTEN") }, nil},
		{"ncat tcp", startNcat, nil},
	}
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			args := append([]string{"ping", "--addr", p.addr(t), "--count", "3", "--interval", "10ms", "--size", "100"}, p.args...)
			r := echoctl(t, spec{}, args...)
			if r.Code != 0 {
				t.Fatalf("%s", r)
			}
			out := string(r.Stdout)
			if n := len(regexp.MustCompile(`(?m)^seq=\d+ peer=\S+ .*rtt=\d+\.\d{3}ms$`).FindAllString(out, -1)); n != 3 {
				t.Errorf("%d probe lines with an rtt, want 3:\n%s", n, out)
			}
			if !strings.Contains(out, "3 probes sent, 3 received, 0% loss") {
				t.Errorf("no summary of 3 answered probes:\n%s", out)
			}
		})
	}
}

// TestPingFailuresExit1: a probe that fails makes ping exit 1, as ping(8)
// does, and the JSON lines say why.
func TestPingFailuresExit1(t *testing.T) {
	r := echoctl(t, spec{}, "ping", "--addr", "127.0.0.1:"+strconv.Itoa(unusedPort(t)), "--count", "2", "--interval", "1ms", "--json")
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.Code, r)
	}
	lines := strings.Split(strings.TrimSpace(string(r.Stdout)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d JSON lines, want 2 probes and a summary:\n%s", len(lines), r.Stdout)
	}
	var probe struct {
		ErrorKind string `json:"error_kind"`
	}
	var sum struct {
		Type     string         `json:"type"`
		Sent     int            `json:"sent"`
		Received int            `json:"received"`
		Errors   map[string]int `json:"errors"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &probe); err != nil || probe.ErrorKind != "refused" {
		t.Errorf("first probe %s: %v", lines[0], err)
	}
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil || sum.Type != "summary" || sum.Sent != 2 || sum.Received != 0 || sum.Errors["refused"] != 2 {
		t.Errorf("summary %s: %+v, %v", lines[2], sum, err)
	}
	if want := "echoctl: ping: not every probe was answered\n"; string(r.Stderr) != want {
		t.Errorf("stderr %q, want %q", r.Stderr, want)
	}
}

// startNcat runs nmap's ncat as an echo server (--exec /bin/cat, a
// process per connection) on a free 127.0.0.1 port, and returns host:port.
func startNcat(t *testing.T) string {
	t.Helper()
	ncat := testtool.Need(t, "ncat", "a peer echoctl did not write")
	addr := "127.0.0.1:" + strconv.Itoa(unusedPort(t))
	host, port, _ := net.SplitHostPort(addr)
	cmd := spec{}.command(t, context.Background(), ncat, "-v", "-l", "--keep-open", "--exec", "/bin/cat", host, port)
	launchProc(t, cmd, syscall.SIGTERM, regexp.MustCompile(`Listening on`))
	return addr
}

// startSocat runs socat as an echo server (PIPE) on a free 127.0.0.1 port
// with the given listen address type, and returns host:port.
func startSocat(t *testing.T, listen string) string {
	t.Helper()
	socat := testtool.Need(t, "socat", "a peer echoctl did not write")
	port := unusedPort(t)
	if listen == "UDP-LISTEN" {
		port = unusedUDPPort(t)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// A UDP "connection" has no end: its forked child, which the cleanup's
	// signal to socat does not reach, ends after 5 s without a datagram.
	cmd := spec{}.command(t, context.Background(), socat, "-d", "-d", "-T", "5", fmt.Sprintf("%s:%d,bind=127.0.0.1,reuseaddr,fork", listen, port), "PIPE")
	launchProc(t, cmd, syscall.SIGTERM, regexp.MustCompile(`listening on`))
	return addr
}

// unusedUDPPort returns a 127.0.0.1 UDP port that was free a moment ago.
func unusedUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

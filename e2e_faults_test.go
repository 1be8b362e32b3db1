package main_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestFaultsSeenBySend: `echoctl send` tells a server's faults apart, on
// the real binary: a reset partway exits 1 saying how much was echoed, a
// flipped bit exits 3 at its offset, an echo cut short by a FIN exits 3;
// and serve lists its faults at start-up and logs each as it acts.
func TestFaultsSeenBySend(t *testing.T) {
	input := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4096 bytes
	cases := []struct {
		name  string
		fault []string
		code  int
		check func(t *testing.T, stderr string)
	}{
		{"reset", []string{"--fault-reset-after", "1024"}, 1, func(t *testing.T, stderr string) {
			// The echo that came before the reset is read, whenever
			// send's write sees the reset first.
			m := regexp.MustCompile(`^echoctl: echo 127\.0\.0\.1:\d+: connection reset by the server after (\d+) of (\d+) bytes echoed\n$`).FindStringSubmatch(stderr)
			if m == nil {
				t.Fatalf("stderr %q, want the reset and how much was echoed", stderr)
			}
			if m[1] != "1024" {
				t.Errorf("%s bytes echoed before the reset, want 1024", m[1])
			}
		}},
		{"corrupt", []string{"--fault-corrupt", "1"}, 3, func(t *testing.T, stderr string) {
			// The bytes may be spaces (b' '): not \S+.
			m := regexp.MustCompile(`^echoctl: echo differs from what was sent at byte (\d+): sent (.+?), received (.+)\n$`).FindStringSubmatch(stderr)
			if m == nil {
				t.Fatalf("stderr %q, want the offset of the flipped byte", stderr)
			}
			off, _ := strconv.Atoi(m[1])
			sent, sok := unquoteByte(m[2])
			got, gok := unquoteByte(m[3])
			if off >= len(input) || !sok || !gok || sent != input[off] || bits.OnesCount8(sent^got) != 1 {
				t.Errorf("at byte %d: sent %s, received %s; want the byte sent there with one bit flipped", off, m[2], m[3])
			}
		}},
		{"refuse", []string{"--fault-refuse", "1"}, 1, func(t *testing.T, stderr string) {
			// The reset may come before connect returns.
			if !regexp.MustCompile(`^echoctl: (echo 127\.0\.0\.1:\d+: server closed the connection before echoing anything|connect 127\.0\.0\.1:\d+: connection reset by peer)\n$`).MatchString(stderr) {
				t.Errorf("stderr %q, want a connection closed before any echo", stderr)
			}
		}},
		{"close", []string{"--fault-close-after", "1024"}, 3, func(t *testing.T, stderr string) {
			if want := "echoctl: echo differs from what was sent: the server closed after 1024 bytes, before the echo was complete\n"; stderr != want {
				t.Errorf("stderr %q, want %q", stderr, want)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, spec{}, "127.0.0.1", tc.fault...)
			r := echoctl(t, spec{Stdin: bytes.NewReader(input)}, "send", "--addr", srv.Addr(), "--log-level", "disabled", "--stdin")
			if r.Code != tc.code {
				t.Fatalf("send: %v; want exit %d", r, tc.code)
			}
			tc.check(t, string(r.Stderr))
			lines := strings.Join(srv.Lines(), "\n")
			if !strings.Contains(lines, "faults on every listener: "+strings.TrimPrefix(tc.fault[0], "--fault-")+"=") {
				t.Errorf("serve's start-up lines do not list the fault:\n%s", lines)
			}
		})
	}
}

// unquoteByte returns the byte that echo.Quote writes as q.
func unquoteByte(q string) (byte, bool) {
	for v := range 256 {
		if echo.Quote([]byte{byte(v)}) == q {
			return byte(v), true
		}
	}
	return 0, false
}

// TestFaultsReloadOnSIGHUP: serve reloads its faults from its config file
// on SIGHUP, for the connections opened afterwards; a file with a bad
// fault keeps the faults in force and says why.
func TestFaultsReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "echoctl.yaml")
	write := func(s string) {
		if err := os.WriteFile(config, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("log-level: info\n") // no fault yet
	srv := startServer(t, spec{}, "127.0.0.1", "--config", config)
	input := bytes.Repeat([]byte("x"), 4096)
	send := func() result {
		return echoctl(t, spec{Stdin: bytes.NewReader(input)}, "send", "--addr", srv.Addr(), "--log-level", "disabled", "--stdin")
	}
	if r := send(); r.Code != 0 {
		t.Fatalf("send before any fault: %v", r)
	}

	write("faults:\n  close-after: 1024\n")
	srv.Signal(syscall.SIGHUP)
	srv.WaitLine(regexp.MustCompile(`^main: SIGHUP: faults reloaded, for new connections: close-after=1KiB$`), readyTimeout)
	if r := send(); r.Code != 3 || !strings.Contains(string(r.Stderr), "the server closed after 1024 bytes") {
		t.Fatalf("send after the reload: %v; want exit 3, cut at 1024 bytes", r)
	}

	write("faults:\n  close-after: soon\n")
	srv.Signal(syscall.SIGHUP)
	srv.WaitLine(regexp.MustCompile(`^main: SIGHUP: faults not reloaded, still close-after=1KiB: invalid fault-close-after "soon" from config file .*$`), readyTimeout)
	if r := send(); r.Code != 3 {
		t.Fatalf("send after a failed reload: %v; want the faults in force (exit 3)", r)
	}

	// Keys that a SIGHUP does not apply are named, not dropped in silence.
	write("faults:\n  close-after: 1024\nmax-conns: 5\ndeny: [10.0.0.0/8]\n")
	srv.Signal(syscall.SIGHUP)
	srv.WaitLine(regexp.MustCompile(`^main: SIGHUP: max-conns, deny changed, which only a restart applies: still as started$`), readyTimeout)
}

// TestUDPFaultsMeasuredByBench: serve --fault-drop 0.1 --fault-duplicate
// 0.05 on udp://, and `echoctl bench` over it counts about that loss and
// those duplicates (binomial bounds, 6 sigma), with every answer intact.
func TestUDPFaultsMeasuredByBench(t *testing.T) {
	var s spec
	_, bound := startServeAddrs(t, s, []string{"udp://127.0.0.1:0"},
		"--fault-drop", "0.1", "--fault-duplicate", "0.05", "--udp-rate-per-source", "0")
	r := echoctl(t, s, "bench", "--addr", bound[0], "--rate", "2000", "--warmup", "0s", "--duration", "5s", "--json", "--log-level", "disabled")
	if r.Code != 0 {
		t.Fatalf("bench: %v", r)
	}
	var res struct {
		Errors map[string]int64 `json:"errors"`
		UDP    struct {
			Sent       int64 `json:"sent"`
			Received   int64 `json:"received"`
			Lost       int64 `json:"lost"`
			Duplicates int64 `json:"duplicates"`
		} `json:"udp"`
	}
	if err := json.Unmarshal(r.Stdout, &res); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, r.Stdout)
	}
	u := res.UDP
	if u.Sent < 5000 {
		t.Fatalf("bench sent %d datagrams in 5s at 2000/s, want at least 5000", u.Sent)
	}
	bound6 := func(what string, got int64, p float64) {
		mean, sigma := float64(u.Sent)*p, math.Sqrt(float64(u.Sent)*p*(1-p))
		if math.Abs(float64(got)-mean) > 6*sigma {
			t.Errorf("%s: %d of %d sent, want %.0f ± %.0f", what, got, u.Sent, mean, 6*sigma)
		}
	}
	bound6("lost", u.Lost, 0.1)
	bound6("duplicates", u.Duplicates, 0.9*0.05)
	for kind, n := range res.Errors {
		if n != 0 {
			t.Errorf("bench counted %d errors of kind %s", n, kind)
		}
	}
}

// TestFaultsReloadKeepsAddressQuery: on SIGHUP the config file's faults
// become every listener's default again, and an address's own fault keys
// stay on top: the port whose query turns close-after off stays clean.
func TestFaultsReloadKeepsAddressQuery(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "echoctl.yaml")
	if err := os.WriteFile(config, []byte("log-level: info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, bound := startServeAddrs(t, spec{}, []string{"127.0.0.1:0", "tcp://127.0.0.2:0?fault-close-after=0"}, "--config", config)
	input := bytes.Repeat([]byte("x"), 4096)
	send := func(addr string) result {
		return echoctl(t, spec{Stdin: bytes.NewReader(input)}, "send", "--addr", addr, "--log-level", "disabled", "--stdin")
	}
	if err := os.WriteFile(config, []byte("faults:\n  close-after: 1024\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitLine(regexp.MustCompile(`^main: SIGHUP: faults reloaded, for new connections: close-after=1KiB$`), readyTimeout)
	if r := send(bound[0]); r.Code != 3 || !strings.Contains(string(r.Stderr), "the server closed after 1024 bytes") {
		t.Fatalf("send to the port without a query after the reload: %v; want exit 3, cut at 1024 bytes", r)
	}
	if r := send(bound[1]); r.Code != 0 {
		t.Fatalf("send to the port whose query sets fault-close-after=0: %v; want exit 0", r)
	}
}

// TestFaultsSeenByTheSeedClient: the Python seed client (asyncio streams)
// against a faulty echoctl serve: a delay holds its echo back by at least
// the delay, whole and in order; a reset partway fails the client.
func TestFaultsSeenByTheSeedClient(t *testing.T) {
	t.Parallel()
	needPython(t)
	const delay = time.Second
	slow := startServer(t, spec{}, "127.0.0.1", "--fault-delay", delay.String())
	r := runSeedClient(t, slow)
	if r.Code != 0 || r.Elapsed < delay {
		t.Errorf("seed client against --fault-delay %v: exit %d after %v, want 0 after at least the delay:\n%s", delay, r.Code, r.Elapsed, r)
	}
	if got := joinChunks(dataChunks(t, r.Lines(), "echo_client", "received")); string(got) != seedEcho {
		t.Errorf("the seed client's received lines add up to %q, want %q:\n%s", got, seedEcho, r.Stderr)
	}

	// The reset reaches the client as ConnectionResetError when it reads
	// or writes after it, or, when it arrives before the client's
	// write_eof, as shutdown's ENOTCONN (Linux reports the reset's
	// error to the next read or write, but shutdown finds the socket
	// closed first): which one depends on when the RST lands.
	cut := startServer(t, spec{}, "127.0.0.1", "--fault-reset-after", "10")
	r = runSeedClient(t, cut)
	stderr := string(r.Stderr)
	if r.Code == 0 || !strings.Contains(stderr, "ConnectionResetError") && !strings.Contains(stderr, "[Errno 107] Transport endpoint is not connected") {
		t.Errorf("seed client against --fault-reset-after 10: want a ConnectionResetError (or ENOTCONN from write_eof after the reset) and a failure:\n%s", r)
	}
}

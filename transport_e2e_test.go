package main_test

// End-to-end tests of the transports of issue 5 (UDP, TLS, Unix sockets,
// several listeners in one process), through the built binary. Helpers
// shared with the other e2e tests are in e2e_main_test.go.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/certtest"
)

// startLineRE matches serve's start-up lines in the text format:
// "main: starting up on HOST port PORT" (TCP), with " (udp)" or " (tls)"
// after it, or "main: starting up on PATH (unix)".
var startLineRE = regexp.MustCompile(`^main: starting up on (\S+?)(?: port (\d+))?(?: \((udp|tls|unix)\))?$`)

// startServeAddrs runs `echoctl serve` with an --addr for each of addrs
// and args, waits for a start-up line per address, and returns the process
// and the addresses to give send, in order: "127.0.0.1:PORT" for TCP,
// "udp://127.0.0.1:PORT", "tls://...", "unix:///path".
func startServeAddrs(t *testing.T, s spec, addrs []string, args ...string) (*proc, []string) {
	t.Helper()
	var full []string
	for _, a := range addrs {
		full = append(full, "--addr", a)
	}
	return startServeN(t, s, len(addrs), append(full, args...)...)
}

// startServeN runs `echoctl serve ARGS...` and waits for n start-up lines;
// it returns the addresses as startServeAddrs does.
func startServeN(t *testing.T, s spec, n int, args ...string) (*proc, []string) {
	t.Helper()
	full := append([]string{"serve"}, args...)
	p := startProcLine(t, s.command(t, context.Background(), echoctlBin, full...), syscall.SIGTERM, startLineRE)
	deadline := time.Now().Add(readyTimeout)
	for {
		var bound []string
		for _, line := range p.Lines() {
			m := startLineRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			switch m[3] {
			case "":
				bound = append(bound, net.JoinHostPort(m[1], m[2]))
			case "unix":
				bound = append(bound, "unix://"+m[1])
			default:
				bound = append(bound, m[3]+"://"+net.JoinHostPort(m[1], m[2]))
			}
		}
		if len(bound) == n {
			return p, bound
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve %q: %d start-up lines within %v, want %d; stderr:\n%s", full, len(bound), readyTimeout, n, p.Stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nonNulBytes returns n random bytes from 1 to 255: anything a command-line
// argument can carry.
func nonNulBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		if b[i] == 0 {
			b[i] = 1
		}
	}
	return b
}

// randomBinary returns n random bytes, NULs included.
func randomBinary(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sendChecked runs `echoctl send ARGS...` and fails unless it exits 0 with
// want on stdout.
func sendChecked(t *testing.T, s spec, want []byte, args ...string) result {
	t.Helper()
	r := echoctl(t, s, append([]string{"send"}, args...)...)
	if r.Code != 0 || !bytes.Equal(r.Stdout, want) {
		i := firstDiff(r.Stdout, want)
		t.Fatalf("send %.200q: want exit 0 and %d bytes on stdout (first difference at byte %d):\n%s", args, len(want), i, r)
	}
	return r
}

// tempSocketPath returns a short path for a Unix socket in a fresh
// directory (sun_path holds about 100 bytes; t.TempDir() may be longer).
func tempSocketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "echoctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "echo.sock")
}

// pki is a CA and server and client certificates, as PEM files.
type pki struct {
	dir                   string
	ca                    *certtest.CA
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	ca := certtest.NewCA(t, "echoctl e2e CA")
	p := pki{dir: dir, ca: ca, caFile: ca.WriteFile(t, dir, "ca.pem")}
	p.serverCert, p.serverKey = ca.Issue(t, certtest.Options{CommonName: "echoctl e2e server", Hosts: []string{"localhost", "127.0.0.1", "::1"}}).WriteFiles(t, dir, "server")
	p.clientCert, p.clientKey = ca.Issue(t, certtest.Options{CommonName: "echoctl e2e client", Client: true}).WriteFiles(t, dir, "client")
	return p
}

// TestE2EUDP serves UDP and sends the seed's messages, binary data and
// datagrams of 1, 1472 (Ethernet's MTU less the headers) and 65507 bytes
// (the most UDP carries over IPv4) with the binary, byte-exact.
func TestE2EUDP(t *testing.T) {
	var s spec
	p, bound := startServeAddrs(t, s, []string{"udp://127.0.0.1:0"}, "-v", "--log-max-bytes", "0")
	addr := bound[0]

	r := sendChecked(t, s, []byte(seedEcho), "--addr", addr, "-v")
	port := strings.TrimPrefix(addr, "udp://127.0.0.1:")
	wantClient := []string{
		"echo_client: connecting to 127.0.0.1 port " + port,
		"echo_client: sending b'This is the message. '",
		"echo_client: received b'This is the message. '",
		"echo_client: sending b'It will be sent '",
		"echo_client: received b'It will be sent '",
		"echo_client: sending b'in parts.'",
		"echo_client: received b'in parts.'",
		"echo_client: closing",
	}
	if got := r.Lines(); strings.Join(got, "\n") != strings.Join(wantClient, "\n") {
		t.Errorf("client log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantClient, "\n"))
	}

	one, mtu, max := nonNulBytes(t, 1), nonNulBytes(t, 1472), nonNulBytes(t, 65507)
	want := bytes.Join([][]byte{one, mtu, max}, nil)
	sendChecked(t, s, want, "--addr", addr, string(one), string(mtu), string(max))
	// NUL cannot be in an argument; the messages key's JSON escapes carry
	// it (and every byte below 0x80).
	nul := spec{Env: []string{`ECHOCTL_MESSAGES=["\u0000", "a\u0000\u0001\u001f\u007f\n"]`}}
	sendChecked(t, nul, []byte("\x00a\x00\x01\x1f\x7f\n"), "--addr", addr)

	// The server logged each datagram on the sender's logger, received
	// then sent, in the seed's byte format. ("sent" follows the write: it
	// may come just after the client has its echo.)
	deadline := time.Now().Add(readyTimeout)
	for len(dataChunks(t, p.Lines(), "", "sent")) < 8 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := dataChunks(t, p.Lines(), "", "sent")
	if len(got) != 8 || !bytes.Equal(bytes.Join(got, nil), append(append([]byte(seedEcho), want...), "\x00a\x00\x01\x1f\x7f\n"...)) {
		t.Errorf("server's sent lines: %d chunks, want 8 byte-exact", len(got))
	}
	if n := len(dataChunks(t, p.Lines(), "", "received")); n != 8 {
		t.Errorf("%d received lines, want 8", n)
	}
	if !regexp.MustCompile(`^echo_127\.0\.0\.1_\d+: received b'This is the message. '$`).MatchString(strings.Join(grep(p.Lines(), "received b'This"), "")) {
		t.Errorf("server log:\n%s", p.Stderr)
	}

	// A datagram too big for UDP is an error, exit 1.
	r = echoctl(t, s, "send", "--addr", addr, string(nonNulBytes(t, 70000)))
	if r.Code != 1 || !strings.Contains(string(r.Stderr), "datagram 1 of 1: 70000 bytes is more than a UDP datagram carries (at most 65507 over IPv4)") {
		t.Errorf("70000-byte datagram:\n%s", r)
	}
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Errorf("serve exit code %d", code)
	}
}

func grep(lines []string, sub string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// TestE2EUDPExitCodes: no server is exit 1 (port unreachable), no echo is
// exit 1 after the retries, a wrong echo is exit 3.
func TestE2EUDPExitCodes(t *testing.T) {
	var s spec
	port := unusedPort(t)
	r := echoctl(t, s, "send", "--addr", "udp://127.0.0.1:"+strconv.Itoa(port))
	if want := "echoctl: connect udp://127.0.0.1:" + strconv.Itoa(port) + ": connection refused\n"; r.Code != 1 || !strings.HasSuffix(string(r.Stderr), want) {
		t.Errorf("no server: want exit 1 and %q:\n%s", want, r)
	}

	// A server that drops everything, and one that changes a byte.
	silent := udpServer(t, func(p []byte) []byte { return nil })
	// A second an attempt, so that a loaded machine still makes all three.
	r = echoctl(t, s, "send", "--addr", silent, "--timeout", "3s", "--retries", "2")
	if want := "echoctl: echo " + silent + ": datagram 1 of 3: no echo after 3 attempts in 3s\n"; r.Code != 1 || !strings.HasSuffix(string(r.Stderr), want) || len(grep(r.Lines(), "resending")) != 2 {
		t.Errorf("silent server: want exit 1, two retries and %q:\n%s", want, r)
	}
	flip := udpServer(t, func(p []byte) []byte {
		if len(p) > 5 {
			p[5] ^= 0x20
		}
		return p
	})
	r = echoctl(t, s, "send", "--addr", flip, "abc", "hello world")
	if want := "echoctl: echo of datagram 2 differs from what was sent at byte 5: sent b' ', received b'\\x00'\n"; r.Code != 3 || !strings.HasSuffix(string(r.Stderr), want) {
		t.Errorf("flipping server: want exit 3 and %q:\n%s", want, r)
	}
}

// udpServer answers each datagram with reply(datagram), if not nil.
func udpServer(t *testing.T, reply func([]byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 70000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(append([]byte(nil), buf[:n]...)); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return "udp://" + pc.LocalAddr().String()
}

// TestE2ETLS serves TLS with certificate files and sends the seed's
// messages and 1 MiB of binary data, verified against the CA.
func TestE2ETLS(t *testing.T) {
	k := newPKI(t)
	var s spec
	p, bound := startServeAddrs(t, s, []string{"tls://127.0.0.1:0"}, "--tls-cert", k.serverCert, "--tls-key", k.serverKey, "-v")
	addr := bound[0]
	r := sendChecked(t, s, []byte(seedEcho), "--addr", addr, "--tls-ca", k.caFile, "-v")
	if got := dataChunks(t, r.Lines(), "echo_client", "sending"); len(got) != 3 {
		t.Errorf("client sent %d chunks, want the seed's 3:\n%s", len(got), r)
	}
	if !contains(r.Lines(), "echo_client: waiting for response") || !contains(r.Lines(), "echo_client: closing") {
		t.Errorf("client log lacks the seed's lines:\n%s", r.Stderr)
	}
	// The name in --addr is checked against the certificate: localhost
	// is in it; a wrong --tls-server-name is refused.
	port := strings.TrimPrefix(addr, "tls://127.0.0.1:")
	sendChecked(t, s, []byte(seedEcho), "--addr", "tls://localhost:"+port, "--tls-ca", k.caFile)
	r = echoctl(t, s, "send", "--addr", addr, "--tls-ca", k.caFile, "--tls-server-name", "wrong.example")
	if r.Code != 1 || !strings.Contains(string(r.Stderr), "certificate is valid for localhost, not wrong.example") {
		t.Errorf("wrong server name:\n%s", r)
	}
	// Without the CA, the system's roots do not know it: exit 1, and one
	// warn line on the server.
	r = echoctl(t, s, "send", "--addr", addr)
	if r.Code != 1 || !strings.Contains(string(r.Stderr), "x509: certificate signed by unknown authority") {
		t.Errorf("unknown CA:\n%s", r)
	}
	p.WaitLine(regexp.MustCompile(`^echo_127\.0\.0\.1_\d+: TLS handshake failed: remote error: tls: bad certificate$`), readyTimeout)
	// A plain TCP client on the TLS port: one line, and the server goes on.
	r = echoctl(t, s, "send", "--addr", "127.0.0.1:"+port, "--timeout", "5s")
	if r.Code == 0 {
		t.Errorf("plain TCP send to a TLS port succeeded:\n%s", r)
	}
	p.WaitLine(regexp.MustCompile(`^echo_127\.0\.0\.1_\d+: TLS handshake failed: the client does not speak TLS \(first record does not look like a TLS handshake\)$`), readyTimeout)
	// A megabyte of binary, last: its -v transcript (some 4 MB of text)
	// may outrun a slow reader of the server's log, which then drops
	// lines and says so (logging.md), and the lines awaited above could
	// be among them.
	data := randomBinary(t, 1<<20)
	sendChecked(t, spec{Stdin: bytes.NewReader(data)}, data, "--addr", addr, "--tls-ca", k.caFile, "--stdin")
	sendChecked(t, s, []byte(seedEcho), "--addr", addr, "--tls-ca", k.caFile)
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Errorf("serve exit code %d", code)
	}
}

func contains(lines []string, want string) bool { return count(lines, want) > 0 }

// sha256Hex is a certificate fingerprint as openssl prints it: upper-case
// hex pairs joined by colons.
func sha256Hex(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// TestE2EMutualTLS: a client with a certificate from the client CA is
// served; one without, or with one from another CA, is refused (exit 1)
// and the server logs why, one warn line each.
func TestE2EMutualTLS(t *testing.T) {
	k := newPKI(t)
	rogueCert, rogueKey := certtest.NewCA(t, "rogue").Issue(t, certtest.Options{CommonName: "rogue", Client: true}).WriteFiles(t, k.dir, "rogue")
	var s spec
	p, bound := startServeAddrs(t, s, []string{"tls://127.0.0.1:0"},
		"--tls-cert", k.serverCert, "--tls-key", k.serverKey, "--tls-client-ca", k.caFile)
	addr := bound[0]
	if !contains(p.Lines(), "main: TLS: clients must present a certificate signed by a CA in "+k.caFile) {
		t.Errorf("no mutual TLS line:\n%s", p.Stderr)
	}
	sendChecked(t, s, []byte(seedEcho), "--addr", addr, "--tls-ca", k.caFile, "--tls-cert", k.clientCert, "--tls-key", k.clientKey)

	env := spec{Env: []string{"ECHOCTL_TLS_CA=" + k.caFile}}
	for _, tt := range []struct {
		name   string
		args   []string
		alert  string // what the client is told
		server string // why the server refused it
	}{
		{"no client certificate", nil, "remote error: tls: certificate required", "tls: client didn't provide a certificate"},
		{"certificate from another CA", []string{"--tls-cert", rogueCert, "--tls-key", rogueKey},
			"remote error: tls: unknown certificate authority", "tls: failed to verify certificate: x509: certificate signed by unknown authority"},
	} {
		before := len(grep(p.Lines(), "TLS handshake failed"))
		r := echoctl(t, env, append([]string{"send", "--addr", addr}, tt.args...)...)
		if r.Code != 1 || len(r.Stdout) != 0 || !strings.Contains(string(r.Stderr), tt.alert) {
			t.Errorf("%s: want exit 1, no echo, the server's alert %q:\n%s", tt.name, tt.alert, r)
		}
		deadline := time.Now().Add(readyTimeout)
		for len(grep(p.Lines(), "TLS handshake failed")) == before && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if f := grep(p.Lines(), "TLS handshake failed"); len(f) != before+1 || !strings.HasSuffix(f[before], "TLS handshake failed: "+tt.server) {
			t.Errorf("%s: server's failure lines %q, want one more ending %q", tt.name, f, tt.server)
		}
	}
}

// TestE2ETLSReloadOnSIGHUP replaces the certificate files and sends SIGHUP
// while a connection is open: new connections get the new certificate,
// the open one goes on echoing, and a broken file is refused without
// stopping anything.
func TestE2ETLSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "reload CA")
	first := ca.Issue(t, certtest.Options{CommonName: "first", Hosts: []string{"127.0.0.1"}})
	second := ca.Issue(t, certtest.Options{CommonName: "second", Hosts: []string{"127.0.0.1"}})
	certFile, keyFile := first.WriteFiles(t, dir, "server")
	var s spec
	p, bound := startServeAddrs(t, s, []string{"tls://127.0.0.1:0"}, "--tls-cert", certFile, "--tls-key", keyFile)
	hostport := strings.TrimPrefix(bound[0], "tls://")
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}

	held, err := tls.Dial("tcp", hostport, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if cn := held.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("first connection got %q", cn)
	}
	tlsRoundTrip(t, held, []byte("before the reload"))

	second.WriteFiles(t, dir, "server")
	p.Signal(syscall.SIGHUP)
	p.WaitLine(regexp.MustCompile(`^main: TLS: reloaded certificate CN=second, valid until \S+, SHA-256 fingerprint [0-9A-F:]{95}$`), readyTimeout)

	fresh, err := tls.Dial("tcp", hostport, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cn := fresh.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "second" {
		t.Errorf("connection after the reload got %q, want second", cn)
	}
	fresh.Close()

	// The connection made before the reload was not dropped.
	tlsRoundTrip(t, held, []byte("after the reload"))
	held.Write([]byte("last"))
	held.CloseWrite()
	held.SetReadDeadline(time.Now().Add(runTimeout))
	if rest, err := io.ReadAll(held); err != nil || string(rest) != "last" {
		t.Errorf("held connection's last echo = %q, %v", rest, err)
	}

	// A broken key: the reload fails, the second certificate stays.
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	p.Signal(syscall.SIGHUP)
	p.WaitLine(regexp.MustCompile(`^main: TLS reload failed, still serving the previous certificate: key file .*: no PEM private key in it$`), readyTimeout)
	again, err := tls.Dial("tcp", hostport, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cn := again.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "second" {
		t.Errorf("after a failed reload got %q, want second", cn)
	}
	again.Close()
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Errorf("serve exit code %d", code)
	}
}

func tlsRoundTrip(t *testing.T, c *tls.Conn, p []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(runTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(p))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("echo %q, %v; want %q", got, err, p)
	}
}

// TestE2ETLSSelfSigned logs the fingerprint of the certificate it serves.
func TestE2ETLSSelfSigned(t *testing.T) {
	var s spec
	p, bound := startServeAddrs(t, s, []string{"tls://127.0.0.1:0"}, "--tls-self-signed")
	line := p.WaitLine(regexp.MustCompile(`^main: TLS: self-signed certificate for localhost, 127\.0\.0\.1, ::1, SHA-256 fingerprint ([0-9A-F:]{95})$`), readyTimeout)
	c, err := tls.Dial("tcp", strings.TrimPrefix(bound[0], "tls://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cert := c.ConnectionState().PeerCertificates[0]
	sum := sha256Hex(cert.Raw)
	if !strings.HasSuffix(line, sum) {
		t.Errorf("logged %q; the certificate's fingerprint is %s", line, sum)
	}
	r := sendChecked(t, s, []byte(seedEcho), "--addr", bound[0], "--tls-insecure")
	if !contains(r.Lines(), "echo_client: TLS: NOT verifying the server's certificate (--tls-insecure): anyone on the path can read and change the echo") {
		t.Errorf("no warning for --tls-insecure:\n%s", r.Stderr)
	}
}

// TestE2EUnix serves a Unix socket: send and --stdin byte-exact, the
// socket's mode, a stale file replaced, a live one and a regular file
// refused, and the file removed at exit.
func TestE2EUnix(t *testing.T) {
	path := tempSocketPath(t)
	// A stale socket, as a killed server leaves it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()

	var s spec
	p, bound := startServeAddrs(t, s, []string{"unix://" + path}, "-v", "--unix-mode", "0600")
	if !contains(p.Lines(), "main: removed stale socket "+path) {
		t.Errorf("no stale socket line:\n%s", p.Stderr)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("socket file %v, %v; want a socket with mode 0600", fi, err)
	}
	sendChecked(t, s, []byte(seedEcho), "--addr", bound[0])
	data := randomBinary(t, 1<<20)
	sendChecked(t, spec{Stdin: bytes.NewReader(data)}, data, "--addr", bound[0], "--stdin")
	// Unix connections are named echo_unix_N.
	p.WaitLine(reLine(`^echo_unix_1: connection accepted$`), readyTimeout)
	p.WaitLine(reLine(`^echo_unix_2: closing$`), readyTimeout)

	// A second server on the live socket fails, and leaves it alone.
	r := echoctl(t, s, "serve", "--addr", "unix://"+path)
	if want := "echoctl: echo: listen unix://" + path + ": " + path + " is in use: another server is listening on it\n"; r.Code != 1 || string(r.Stderr) != want {
		t.Errorf("second server: want exit 1 and %q:\n%s", want, r)
	}
	sendChecked(t, s, []byte(seedEcho), "--addr", bound[0])

	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Errorf("serve exit code %d", code)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file still there after exit: %v", err)
	}

	// A regular file at the path is never removed.
	os.WriteFile(path, []byte("precious"), 0o644)
	r = echoctl(t, s, "serve", "--addr", "unix://"+path)
	if r.Code != 1 || !strings.Contains(string(r.Stderr), path+" exists and is not a socket (a regular file); not removing it") {
		t.Errorf("regular file: want exit 1:\n%s", r)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("the regular file was changed: %q", b)
	}
}

// TestE2ESeveralListeners serves TCP, UDP, TLS and a Unix socket in one
// process (two of them from the config file) and stops them together.
func TestE2ESeveralListeners(t *testing.T) {
	k := newPKI(t)
	path := tempSocketPath(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "echoctl.yaml", "addr:\n  - tls://127.0.0.1:0\n  - unix://"+path+"\n"+
		"tls-cert: "+k.serverCert+"\ntls-key: "+k.serverKey+"\n")
	s := spec{Dir: dir}
	// The config file's list, found in the working directory.
	p, bound := startServeN(t, s, 2)
	if !strings.HasPrefix(bound[0], "tls://127.0.0.1:") || bound[1] != "unix://"+path {
		t.Fatalf("serve with the config file's list: %q", bound)
	}
	sendChecked(t, s, []byte(seedEcho), "--addr", bound[0], "--tls-ca", k.caFile)
	if code := p.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exit code %d", code)
	}

	// Flags win over the file: its list is replaced by four addresses.

	p, bound = startServeAddrs(t, s, []string{"127.0.0.1:0", "udp://127.0.0.1:0", "tls://127.0.0.1:0", "unix://" + path}, "--config", cfg)
	for _, addr := range bound {
		sendChecked(t, s, []byte(seedEcho), "--addr", addr, "--tls-ca", k.caFile)
	}
	// Hold a TCP connection open across the signal: it still gets its
	// echo, then everything closes.
	c, err := net.Dial("tcp", bound[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(runTimeout))
	c.Write([]byte("held"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil { // accepted and served
		t.Fatal(err)
	}
	p.Signal(syscall.SIGTERM)
	p.WaitLine(regexp.MustCompile(`^main: closing server$`), stopTimeout)
	c.Write([]byte(" across the signal"))
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != " across the signal" {
		t.Errorf("held connection: %q, %v", got, err)
	}
	if code := p.Wait(stopTimeout); code != 0 {
		t.Errorf("serve exit code %d:\n%s", code, p.Stderr)
	}
	if n := count(p.Lines(), "main: closing server"); n != 1 {
		t.Errorf("%d closing server lines, want 1", n)
	}
	for _, addr := range bound[:3] {
		network, hostport := "tcp", addr
		if strings.HasPrefix(addr, "udp://") {
			network, hostport = "udp", strings.TrimPrefix(addr, "udp://")
		} else if strings.HasPrefix(addr, "tls://") {
			hostport = strings.TrimPrefix(addr, "tls://")
		}
		if network == "udp" {
			pc, err := net.ListenPacket("udp", hostport)
			if err != nil {
				t.Errorf("%s still bound after exit: %v", addr, err)
			} else {
				pc.Close()
			}
			continue
		}
		if c, err := net.DialTimeout("tcp", hostport, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts after exit", addr)
		}
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file left: %v", err)
	}
}

// TestE2EPythonTLSInterop: the seed's client and server, over TLS with
// Python's ssl module and a certificate the test makes, interoperate with
// echoctl byte-exact.
func TestE2EPythonTLSInterop(t *testing.T) {
	py := needPython(t)
	k := newPKI(t)
	seed, err := filepath.Abs(filepath.Join("testdata", "seed"))
	if err != nil {
		t.Fatal(err)
	}
	var s spec

	t.Run("seed client to echoctl serve", func(t *testing.T) {
		p, bound := startServeAddrs(t, s, []string{"tls://127.0.0.1:0"}, "--tls-cert", k.serverCert, "--tls-key", k.serverKey, "-v")
		port := strings.TrimPrefix(bound[0], "tls://127.0.0.1:")
		r := runProg(t, s, py, filepath.Join(seed, "asyncio_echo_client_coroutine_tls.py"), "127.0.0.1", port, k.caFile)
		if r.Code != 0 {
			t.Fatalf("python client:\n%s", r)
		}
		if got := bytes.Join(dataChunks(t, r.Lines(), "echo_client", "received"), nil); string(got) != seedEcho {
			t.Errorf("python client received %q, want %q:\n%s", got, seedEcho, r.Stderr)
		}
		p.WaitLine(regexp.MustCompile(`^echo_127\.0\.0\.1_\d+: closing$`), readyTimeout)
		if got := bytes.Join(dataChunks(t, p.Lines(), "", "sent"), nil); string(got) != seedEcho {
			t.Errorf("echoctl sent %q", got)
		}
	})

	t.Run("echoctl send to seed server", func(t *testing.T) {
		cmd := s.command(t, context.Background(), py, filepath.Join(seed, "ssl_echo_server_tls.py"), "127.0.0.1", "0", k.serverCert, k.serverKey)
		p := startProc(t, cmd, syscall.SIGINT)
		addr := "tls://127.0.0.1:" + strconv.Itoa(p.Port)
		sendChecked(t, s, []byte(seedEcho), "--addr", addr, "--tls-ca", k.caFile, "-v")
		data := nonNulBytes(t, 64<<10)
		sendChecked(t, spec{Stdin: bytes.NewReader(data)}, data, "--addr", addr, "--tls-ca", k.caFile, "--stdin")
		p.WaitLine(regexp.MustCompile(`^echo_127\.0\.0\.1_\d+: closing$`), readyTimeout)
	})
}

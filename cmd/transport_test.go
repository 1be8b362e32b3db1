package cmd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/pkg/echo"
)

// TestLoadAddrList covers the ways serve is given several addresses, and
// send's refusal of more than one.
func TestLoadAddrList(t *testing.T) {
	two := []string{"tcp://127.0.0.1:7", "udp://127.0.0.1:7"}
	tests := []struct {
		name    string
		args    []string
		env     string // ECHOCTL_ADDR
		yaml    string // config file content
		want    []string
		wantErr string
	}{
		{name: "default", args: []string{"serve"}, want: []string{"localhost:10000"}},
		{name: "repeated flag", args: []string{"serve", "--addr", two[0], "--addr", two[1]}, want: two},
		{name: "env comma list", args: []string{"serve"}, env: "tcp://127.0.0.1:7, udp://127.0.0.1:7", want: two},
		{name: "env JSON list", args: []string{"serve"}, env: `["tcp://127.0.0.1:7", "udp://127.0.0.1:7"]`, want: two},
		{name: "env bad JSON", args: []string{"serve"}, env: `["tcp://127.0.0.1:7"`,
			wantErr: `invalid addr "[\"tcp://127.0.0.1:7\"" from environment ECHOCTL_ADDR: must be an address, or a JSON array of addresses such as ["tcp://:7", "udp://:7"]`},
		{name: "YAML list", args: []string{"serve"}, yaml: "addr:\n  - tcp://127.0.0.1:7\n  - udp://127.0.0.1:7\n", want: two},
		{name: "YAML string", args: []string{"serve"}, yaml: "addr: unix:///run/e.sock\n", want: []string{"unix:///run/e.sock"}},
		{name: "flag beats YAML list", args: []string{"serve", "--addr", ":9"}, yaml: "addr: [tcp://127.0.0.1:7, udp://127.0.0.1:7]\n", want: []string{":9"}},
		{name: "YAML list item not a string", args: []string{"serve"}, yaml: "addr: [tcp://127.0.0.1:7, 7]\n",
			wantErr: `invalid addr ["tcp://127.0.0.1:7",7] from config file %[1]s: must be a string host:port or URL, or a list of them`},
		{name: "YAML empty list", args: []string{"serve"}, yaml: "addr: []\n",
			wantErr: `invalid addr [] from config file %[1]s: must name at least one address`},
		{name: "duplicate", args: []string{"serve", "--addr", ":7", "--addr", ":7"},
			wantErr: `invalid addr ":7" from flag --addr: is listed twice`},
		{name: "duplicate in two spellings", args: []string{"serve", "--addr", "127.0.0.1:7", "--addr", "TCP://127.0.0.1:7"},
			wantErr: `invalid addr "TCP://127.0.0.1:7" from flag --addr: is the socket "127.0.0.1:7" listens on already`},
		{name: "one IPv6 address in two spellings", args: []string{"serve", "--addr", "[::1]:7", "--addr", "[0:0::1]:7"},
			wantErr: `invalid addr "[0:0::1]:7" from flag --addr: is the socket "[::1]:7" listens on already`},
		{name: "IPv4-mapped and IPv4", args: []string{"serve", "--addr", "udp://127.0.0.1:7", "--addr", "udp://[::ffff:127.0.0.1]:7"},
			wantErr: `invalid addr "udp://[::ffff:127.0.0.1]:7" from flag --addr: is the socket "udp://127.0.0.1:7" listens on already`},
		{name: "TLS on a TCP socket", args: []string{"serve", "--addr", "[::1]:7", "--addr", "tls://[::1]:7", "--tls-self-signed"},
			wantErr: `invalid addr "tls://[::1]:7" from flag --addr: is the socket "[::1]:7" listens on already`},
		{name: "every address, then one", args: []string{"serve", "--addr", ":7", "--addr", "tls://127.0.0.1:7", "--tls-self-signed"},
			wantErr: `invalid addr "tls://127.0.0.1:7" from flag --addr: overlaps ":7": one of them listens on every address at port 7, the other's included`},
		{name: "one address, then every", args: []string{"serve", "--addr", "udp://[::1]:7", "--addr", "udp://[::]:7"},
			wantErr: `invalid addr "udp://[::]:7" from flag --addr: overlaps "udp://[::1]:7": one of them listens on every address at port 7, the other's included`},
		{name: "a name under every address", args: []string{"serve", "--addr", "localhost:7", "--addr", ":7"},
			wantErr: `invalid addr ":7" from flag --addr: overlaps "localhost:7": one of them listens on every address at port 7, the other's included`},
		{name: "every IPv4 address", args: []string{"serve", "--addr", "0.0.0.0:7", "--addr", "127.0.0.1:7"},
			wantErr: `invalid addr "127.0.0.1:7" from flag --addr: overlaps "0.0.0.0:7": one of them listens on every IPv4 address at port 7, the other's included`},
		{name: "every IPv4 address beside IPv6", args: []string{"serve", "--addr", "0.0.0.0:7", "--addr", "[::1]:7"},
			want: []string{"0.0.0.0:7", "[::1]:7"}},
		{name: "every address in two spellings", args: []string{"serve", "--addr", ":7", "--addr", "[::]:7"},
			wantErr: `invalid addr "[::]:7" from flag --addr: is the socket ":7" listens on already`},
		{name: "every address, IPv4-mapped", args: []string{"serve", "--addr", "[::ffff:0.0.0.0]:7", "--addr", "127.0.0.1:7"},
			wantErr: `invalid addr "127.0.0.1:7" from flag --addr: overlaps "[::ffff:0.0.0.0]:7": one of them listens on every address at port 7, the other's included`},
		{name: "every address, other transport or port", args: []string{"serve", "--addr", ":7", "--addr", "udp://127.0.0.1:7", "--addr", "127.0.0.1:8", "--addr", "unix:///tmp/e.sock"},
			want: []string{":7", "udp://127.0.0.1:7", "127.0.0.1:8", "unix:///tmp/e.sock"}},
		{name: "every address, port 0", args: []string{"serve", "--addr", ":0", "--addr", "127.0.0.1:0"}, want: []string{":0", "127.0.0.1:0"}},
		{name: "TCP and UDP on one port", args: []string{"serve", "--addr", "127.0.0.1:7", "--addr", "udp://127.0.0.1:7"}, want: []string{"127.0.0.1:7", "udp://127.0.0.1:7"}},
		{name: "bad scheme in a list", args: []string{"serve", "--addr", ":7", "--addr", "sctp://:7"},
			wantErr: `invalid addr "sctp://:7" from flag --addr: unknown scheme "sctp": want tcp, udp, tls or unix`},
		{name: "relative unix path", args: []string{"serve"}, env: "unix://e.sock",
			wantErr: `invalid addr "unix://e.sock" from environment ECHOCTL_ADDR: socket path "e.sock" is not absolute: want unix:///absolute/path (three slashes)`},
		{name: "send one URL", args: []string{"send", "--addr", "udp://127.0.0.1:7"}, want: []string{"udp://127.0.0.1:7"}},
		{name: "send env list", args: []string{"send"}, env: "tcp://127.0.0.1:7,udp://127.0.0.1:7",
			wantErr: `invalid addr "tcp://127.0.0.1:7,udp://127.0.0.1:7" from environment ECHOCTL_ADDR: send connects to one address; this names 2`},
		{name: "env stray comma", args: []string{"serve"}, env: "tcp://127.0.0.1:7,",
			wantErr: `invalid addr "tcp://127.0.0.1:7," from environment ECHOCTL_ADDR: an item is empty (a stray comma?): must be addresses separated by commas, such as tcp://:7,udp://:7`},
		{name: "YAML empty item", args: []string{"serve"}, yaml: "addr: \"tcp://127.0.0.1:7,,udp://127.0.0.1:7\"\n",
			wantErr: `invalid addr "tcp://127.0.0.1:7,,udp://127.0.0.1:7" from config file %[1]s: an item is empty (a stray comma?): must be addresses separated by commas, such as tcp://:7,udp://:7`},
		{name: "send port 0", args: []string{"send", "--addr", "127.0.0.1:0"},
			wantErr: `invalid addr "127.0.0.1:0" from flag --addr: port 0 picks a free port to listen on, for serve: give the server's port`},
		{name: "serve port 0", args: []string{"serve", "--addr", "127.0.0.1:0"}, want: []string{"127.0.0.1:0"}},
		{name: "serve port 0 twice", args: []string{"serve", "--addr", "127.0.0.1:0", "--addr", "127.0.0.1:0"}, want: []string{"127.0.0.1:0", "127.0.0.1:0"}},
		{name: "send YAML list", args: []string{"send"}, yaml: "addr: [tcp://127.0.0.1:7, udp://127.0.0.1:7]\n",
			wantErr: `invalid addr ["tcp://127.0.0.1:7","udp://127.0.0.1:7"] from config file %[1]s: send connects to one address; this names 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			args := tt.args
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, filepath.Join(dir, "c.yaml"), tt.yaml)
				args = append(args, "--config", path)
			}
			if tt.env != "" {
				t.Setenv("ECHOCTL_ADDR", tt.env)
			}
			cfg, err := loadFor(t, args...)
			if tt.wantErr != "" {
				want := tt.wantErr
				if path != "" {
					want = fmt.Sprintf(want, path)
				}
				if err == nil || err.Error() != want {
					t.Fatalf("error:\n got %v\nwant %s", err, want)
				}
				checkUsageError(t, run(t, cancelledContext(), args...), want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Addrs, tt.want) || cfg.Addr != tt.want[0] {
				t.Errorf("Addrs %q, Addr %q; want %q", cfg.Addrs, cfg.Addr, tt.want)
			}
		})
	}
}

// tlsFiles are PEM files for the TLS tests.
type tlsFiles struct {
	dir                      string
	ca                       *certtest.CA
	caFile                   string
	serverCert, serverKey    string
	clientCert, clientKey    string
	otherKey, notPEM, noFile string
}

func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	ca := certtest.NewCA(t, "echoctl test CA")
	f := tlsFiles{dir: dir, ca: ca, caFile: ca.WriteFile(t, dir, "ca.pem")}
	f.serverCert, f.serverKey = ca.Issue(t, certtest.Options{CommonName: "server", Hosts: []string{"localhost", "127.0.0.1"}}).WriteFiles(t, dir, "server")
	f.clientCert, f.clientKey = ca.Issue(t, certtest.Options{CommonName: "client", Client: true}).WriteFiles(t, dir, "client")
	_, f.otherKey = ca.Issue(t, certtest.Options{CommonName: "other"}).WriteFiles(t, dir, "other")
	f.notPEM = writeFile(t, filepath.Join(dir, "not.pem"), "not PEM\n")
	f.noFile = filepath.Join(dir, "missing.pem")
	return f
}

func TestLoadTransport(t *testing.T) {
	f := newTLSFiles(t)
	isolate(t)
	cfg := mustLoad(t, "serve", "--addr", "tls://127.0.0.1:0", "--tls-cert", f.serverCert, "--tls-key", f.serverKey,
		"--tls-client-ca", f.caFile, "--unix-mode", "600")
	udpRate := echo.PacketRate{Datagrams: 100, Bytes: 256 << 10}
	want := TransportConfig{TLSCert: f.serverCert, TLSKey: f.serverKey, TLSClientCA: f.caFile, UnixMode: 0o600, Retries: 2, UDPRatePerSource: udpRate}
	if !reflect.DeepEqual(cfg.Transport, want) {
		t.Errorf("serve transport %+v, want %+v", cfg.Transport, want)
	}
	t.Setenv("ECHOCTL_TLS_INSECURE", "true")
	t.Setenv("ECHOCTL_RETRIES", "5")
	t.Setenv("ECHOCTL_TLS_SERVER_NAME", "echo.example")
	cfg = mustLoad(t, "send", "--addr", "tls://127.0.0.1:7", "--tls-ca", f.caFile, "--tls-cert", f.clientCert, "--tls-key", f.clientKey)
	want = TransportConfig{TLSCA: f.caFile, TLSCert: f.clientCert, TLSKey: f.clientKey, TLSServerName: "echo.example", TLSInsecure: true, UnixMode: 0o660, Retries: 5, UDPRatePerSource: udpRate}
	if !reflect.DeepEqual(cfg.Transport, want) {
		t.Errorf("send transport %+v, want %+v", cfg.Transport, want)
	}
}

func TestLoadUnixMode(t *testing.T) {
	for _, tt := range []struct {
		file, content string
		want          os.FileMode
	}{
		{"c.yaml", "unix-mode: 0600\n", 0o600}, // YAML reads 0600 as octal
		{"c.yaml", "unix-mode: \"0640\"\n", 0o640},
		{"c.yaml", "unix-mode: \"755\"\n", 0o755},
		{"c.yaml", "unix-mode: 0o700\n", 0o700},
		{"c.toml", "unix-mode = 0o600\n", 0o600},
		{"c.toml", "unix-mode = \"0600\"\n", 0o600},
		{"c.json", `{"unix-mode": "0600"}`, 0o600},
	} {
		dir := isolate(t)
		cfg := mustLoad(t, "serve", "--config", writeFile(t, filepath.Join(dir, tt.file), tt.content))
		if cfg.Transport.UnixMode != tt.want {
			t.Errorf("%s %q: mode %o, want %o", tt.file, tt.content, cfg.Transport.UnixMode, tt.want)
		}
	}
	isolate(t)
	t.Setenv("ECHOCTL_UNIX_MODE", "600")
	if cfg := mustLoad(t, "serve"); cfg.Transport.UnixMode != 0o600 {
		t.Errorf("ECHOCTL_UNIX_MODE=600: mode %o", cfg.Transport.UnixMode)
	}
	checkUsageError(t, run(t, cancelledContext(), "serve", "--config", writeFile(t, filepath.Join(isolate(t), "c.yaml"), "unix-mode: 600\n")),
		`invalid unix-mode 600 from config file `+filepath.Join(mustGetwd(t), "c.yaml")+`: `+unixModeReason)
}

// TestTLSFilesReadOnlyWhereUsed: a command reads the TLS files only with a
// tls:// address: a shared config file whose server certificate only the
// service may read (or that is missing here) does not stop a plain send or
// serve; they say it is ignored.
func TestTLSFilesReadOnlyWhereUsed(t *testing.T) {
	f := newTLSFiles(t)
	for _, args := range [][]string{
		{"send", "--tls-cert", f.noFile, "--tls-key", f.noFile},
		{"serve", "--tls-cert", f.noFile, "--tls-key", f.noFile, "--tls-client-ca", f.notPEM},
	} {
		isolate(t)
		cfg := mustLoad(t, args...)
		if len(cfg.Warnings) == 0 || !strings.Contains(cfg.Warnings[0], "ignored") {
			t.Errorf("%q: warnings %q, want the TLS keys said ignored", args, cfg.Warnings)
		}
	}
}

func TestRunInvalidTransport(t *testing.T) {
	f := newTLSFiles(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"tls address without certificate", []string{"serve", "--addr", "tls://127.0.0.1:0"}, nil,
			`invalid addr "tls://127.0.0.1:0" from flag --addr: a tls:// address needs tls-cert and tls-key, or tls-self-signed`},
		{"certificate without key", []string{"serve", "--tls-cert", f.serverCert}, nil,
			`invalid tls-cert "` + f.serverCert + `" from flag --tls-cert: needs tls-key too`},
		{"key without certificate", []string{"send"}, map[string]string{"ECHOCTL_TLS_KEY": f.clientKey},
			`invalid tls-key "` + f.clientKey + `" from environment ECHOCTL_TLS_KEY: needs tls-cert too`},
		{"missing certificate file", []string{"serve", "--addr", "tls://127.0.0.1:0", "--tls-cert", f.noFile, "--tls-key", f.serverKey}, nil,
			`invalid tls-cert "` + f.noFile + `" from flag --tls-cert: no such file or directory`},
		{"certificate not PEM", []string{"serve", "--addr", "tls://127.0.0.1:0", "--tls-cert", f.notPEM, "--tls-key", f.serverKey}, nil,
			`invalid tls-cert "` + f.notPEM + `" from flag --tls-cert: no PEM certificate in it`},
		{"key of another certificate", []string{"send", "--addr", "tls://127.0.0.1:7", "--tls-cert", f.clientCert, "--tls-key", f.otherKey}, nil,
			`invalid tls-key "` + f.otherKey + `" from flag --tls-key: the private key does not match the certificate`},
		{"client CA not PEM", []string{"serve", "--addr", "tls://127.0.0.1:0", "--tls-self-signed", "--tls-client-ca", f.notPEM}, nil,
			`invalid tls-client-ca "` + f.notPEM + `" from flag --tls-client-ca: no PEM certificate in it`},
		{"CA missing", []string{"send", "--addr", "tls://127.0.0.1:7"}, map[string]string{"ECHOCTL_TLS_CA": f.noFile},
			`invalid tls-ca "` + f.noFile + `" from environment ECHOCTL_TLS_CA: no such file or directory`},
		{"self-signed and certificate", []string{"serve", "--tls-self-signed", "--tls-cert", f.serverCert, "--tls-key", f.serverKey}, nil,
			`invalid tls-self-signed true from flag --tls-self-signed: conflicts with tls-cert: give a certificate or ask for a self-signed one, not both`},
		{"self-signed not a boolean", []string{"serve"}, map[string]string{"ECHOCTL_TLS_SELF_SIGNED": "maybe"},
			`invalid tls-self-signed "maybe" from environment ECHOCTL_TLS_SELF_SIGNED: must be true or false (in the environment also 1, 0, t or f)`},
		{"insecure in capitals", []string{"send"}, map[string]string{"ECHOCTL_TLS_INSECURE": "TRUE"}, // values are case-sensitive
			`invalid tls-insecure "TRUE" from environment ECHOCTL_TLS_INSECURE: must be true or false (in the environment also 1, 0, t or f)`},
		{"unix-mode not octal", []string{"serve", "--unix-mode", "0999"}, nil,
			`invalid unix-mode "0999" from flag --unix-mode: ` + unixModeReason},
		{"unix-mode zero", []string{"serve"}, map[string]string{"ECHOCTL_UNIX_MODE": "0"},
			`invalid unix-mode "0" from environment ECHOCTL_UNIX_MODE: ` + unixModeReason},
		{"retries negative", []string{"send", "--retries", "-1"}, nil,
			`invalid retries -1 from flag --retries: must be an integer from 0 to 100`},
		{"udp rate per minute", []string{"serve", "--udp-rate-per-source", "100/m"}, nil,
			`invalid udp-rate-per-source "100/m" from flag --udp-rate-per-source: ` + udpRateReason},
		{"udp rate bytes first", []string{"serve"}, map[string]string{"ECHOCTL_UDP_RATE_PER_SOURCE": "1MiB/s,10/s"},
			`invalid udp-rate-per-source "1MiB/s,10/s" from environment ECHOCTL_UDP_RATE_PER_SOURCE: ` + udpRateReason},
		{"udp allow low ports not a boolean", []string{"serve"}, map[string]string{"ECHOCTL_UDP_ALLOW_LOW_PORTS": "lab"},
			`invalid udp-allow-low-ports "lab" from environment ECHOCTL_UDP_ALLOW_LOW_PORTS: must be true or false (in the environment also 1, 0, t or f)`},
		{"stdin over UDP", []string{"send", "--stdin", "--addr", "udp://127.0.0.1:7"}, nil,
			`send: --stdin needs a stream address (tcp, tls or unix): over udp:// each message is one datagram`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			checkUsageError(t, run(t, cancelledContext(), tt.args...), tt.want)
		})
	}
}

// TestLoadUDPGuard: udp-rate-per-source and udp-allow-low-ports from each
// layer.
func TestLoadUDPGuard(t *testing.T) {
	def := echo.PacketRate{Datagrams: echo.DefaultUDPDatagramsPerSource, Bytes: echo.DefaultUDPBytesPerSource}
	for _, tt := range []struct {
		name     string
		args     []string
		env      map[string]string
		file     string // name and content, "c.yaml:..."
		rate     echo.PacketRate
		lowPorts bool
	}{
		{name: "default", rate: def},
		{name: "flag off", args: []string{"--udp-rate-per-source", "0"}, rate: echo.PacketRate{}},
		{name: "flag", args: []string{"--udp-rate-per-source", "1000/s,16MiB/s", "--udp-allow-low-ports"}, rate: echo.PacketRate{Datagrams: 1000, Bytes: 16 << 20}, lowPorts: true},
		{name: "env", env: map[string]string{"ECHOCTL_UDP_RATE_PER_SOURCE": "50/s", "ECHOCTL_UDP_ALLOW_LOW_PORTS": "1"}, rate: echo.PacketRate{Datagrams: 50}, lowPorts: true},
		{name: "YAML number 0", file: "c.yaml:udp-rate-per-source: 0\nudp-allow-low-ports: true\n", rate: echo.PacketRate{}, lowPorts: true},
		{name: "YAML string", file: "c.yaml:udp-rate-per-source: 10/s,1MiB/s\n", rate: echo.PacketRate{Datagrams: 10, Bytes: 1 << 20}},
		{name: "TOML", file: "c.toml:udp-rate-per-source = \"200/s,512KiB/s\"\n", rate: echo.PacketRate{Datagrams: 200, Bytes: 512 << 10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			args := append([]string{"serve"}, tt.args...)
			if tt.file != "" {
				name, content, _ := strings.Cut(tt.file, ":")
				args = append(args, "--config", writeFile(t, filepath.Join(dir, name), content))
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg := mustLoad(t, args...)
			if cfg.Transport.UDPRatePerSource != tt.rate || cfg.Transport.UDPAllowLowPorts != tt.lowPorts {
				t.Errorf("rate %+v, low ports %v; want %+v, %v", cfg.Transport.UDPRatePerSource, cfg.Transport.UDPAllowLowPorts, tt.rate, tt.lowPorts)
			}
		})
	}
}

// TestServeUDPRatePerSource: serve applies --udp-rate-per-source: of a
// quick burst of datagrams from one source, one a second is answered.
func TestServeUDPRatePerSource(t *testing.T) {
	isolate(t)
	p, bound := startServeAddrs(t, []string{"udp://127.0.0.1:0"}, "--udp-rate-per-source", "1/s")
	c, err := net.Dial("udp", strings.TrimPrefix(bound[0], "udp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Read(make([]byte, 8)); err != nil {
		t.Fatalf("first datagram not answered: %v", err)
	}
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(p.stderr.String(), "over the per-source rate limit of 1/s") {
		if time.Now().After(deadline) {
			t.Fatalf("no rate limit line; stderr:\n%s", p.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startServeAddrs runs serve in-process on addrs (with extra flags) and
// returns the address of each listener, in the URL form send takes, from
// its start-up lines.
func startServeAddrs(t *testing.T, addrs []string, extra ...string) (*serveProcess, []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &serveProcess{stderr: &syncBuffer{}, stdout: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	args := []string{"serve", "--log-format", "json"}
	for _, a := range addrs {
		args = append(args, "--addr", a)
	}
	args = append(args, extra...)
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
	deadline := time.Now().Add(waitTimeout)
	for {
		var bound []string
		for _, line := range jsonLines(t, p.stderr.String()) {
			if msg, _ := line["message"].(string); line["logger"] == "main" && strings.HasPrefix(msg, "starting up on ") {
				for _, l := range line["listeners"].([]any) {
					bound = append(bound, l.(string))
				}
			}
		}
		if len(bound) >= len(addrs) {
			return p, bound
		}
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("serve exited with code %d before starting up; stderr:\n%s", code, p.stderr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start within %v; stderr:\n%s", waitTimeout, p.stderr)
		}
	}
}

// TestServeSendTransports serves TCP, UDP, TLS (mutual) and a Unix socket
// from one in-process serve, sends to each, and stops them together.
func TestServeSendTransports(t *testing.T) {
	isolate(t)
	f := newTLSFiles(t)
	dir, err := os.MkdirTemp("", "echoctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "e.sock")
	p, bound := startServeAddrs(t, []string{"127.0.0.1:0", "udp://127.0.0.1:0", "tls://127.0.0.1:0", "unix://" + sock},
		"--tls-cert", f.serverCert, "--tls-key", f.serverKey, "--tls-client-ca", f.caFile, "--unix-mode", "0600")
	if len(bound) != 4 {
		t.Fatalf("bound %q", bound)
	}
	for _, addr := range bound {
		args := []string{"send", "--addr", addr, "--tls-ca", f.caFile, "--tls-cert", f.clientCert, "--tls-key", f.clientKey, "-v", "--log-format", "json"}
		r := run(t, context.Background(), args...)
		if r.code != ExitOK || r.stdout != "This is the message. It will be sent in parts." {
			t.Errorf("send to %s: exit %d, stdout %q, stderr:\n%s", addr, r.code, r.stdout, r.stderr)
		}
	}
	// Without a client certificate the TLS server refuses: exit 1.
	r := run(t, context.Background(), "send", "--addr", bound[2], "--tls-ca", f.caFile)
	if r.code != ExitNetwork || !strings.Contains(r.stderr, "remote error: tls: certificate required") {
		t.Errorf("send without a client certificate: exit %d, stderr %q", r.code, r.stderr)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file: %v, %v", fi, err)
	}
	if code, _ := p.stop(t); code != ExitOK {
		t.Errorf("serve exit code %d; stderr:\n%s", code, p.stderr)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Error("socket file left behind")
	}
}

func TestSendTLSInsecureWarns(t *testing.T) {
	isolate(t)
	_, bound := startServeAddrs(t, []string{"tls://127.0.0.1:0"}, "--tls-self-signed")
	r := run(t, context.Background(), "send", "--addr", bound[0])
	if r.code != ExitNetwork || !strings.Contains(r.stderr, "certificate signed by unknown authority") {
		t.Errorf("send to a self-signed server: exit %d, stderr %q", r.code, r.stderr)
	}
	r = run(t, context.Background(), "send", "--addr", bound[0], "--tls-insecure")
	if r.code != ExitOK || !strings.Contains(r.stderr, "echo_client: TLS: NOT verifying the server's certificate (--tls-insecure)") {
		t.Errorf("send --tls-insecure: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestSendUDPNoEchoExits1(t *testing.T) {
	isolate(t)
	// A UDP socket that reads and never answers.
	pc, err := netListenPacket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := "udp://" + pc.LocalAddr().String()
	r := run(t, context.Background(), "send", "--addr", addr, "--timeout", "300ms", "--retries", "1", "one")
	want := "echoctl: echo " + addr + ": datagram 1 of 1: no echo after 2 attempts in 300ms\n"
	if r.code != ExitNetwork || !strings.HasSuffix(r.stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
	if !strings.Contains(r.stderr, "no echo for datagram 1 within 150ms; resending (retry 1 of 1)") {
		t.Errorf("no retry line in %q", r.stderr)
	}
}

func TestSendUDPMismatchExits3(t *testing.T) {
	isolate(t)
	pc, err := netListenPacket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(bytes.ToUpper(buf[:n]), from)
		}
	}()
	defer func() { pc.Close(); <-done }()
	// The second "ABC" may be a second echo of the first: passed over
	// until the timeout, then taken for the wrong echo it is.
	r := run(t, context.Background(), "send", "--addr", "udp://"+pc.LocalAddr().String(), "--timeout", "600ms", "ABC", "abc")
	if r.code != ExitMismatch || r.stdout != "ABCABC" || !strings.HasSuffix(r.stderr, "echoctl: echo of datagram 2 differs from what was sent at byte 0: sent b'a', received b'A'\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func netListenPacket(addr string) (net.PacketConn, error) { return net.ListenPacket("udp", addr) }

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

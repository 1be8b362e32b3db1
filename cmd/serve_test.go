package cmd

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/internal/metrics"
	"github.com/echoctl/echoctl/internal/tlsconfig"
	"github.com/echoctl/echoctl/pkg/echo"
)

// TestNewServer: newServer sets every echo.Server field that a key
// configures, from the configuration loaded for the flags given, and
// returns the TLS certificate when an address is tls://.
func TestNewServer(t *testing.T) {
	f := newTLSFiles(t)
	defaultRate := echo.PacketRate{Datagrams: echo.DefaultUDPDatagramsPerSource, Bytes: echo.DefaultUDPBytesPerSource}
	noRate := echo.PacketRate{}
	noProxy := echo.ListenerOptions{ProxyTimeout: echo.DefaultProxyTimeout}
	tests := []struct {
		name string
		args []string
		want *echo.Server // without Logger, Observer and TLSConfig
		// tlsFiles are the files the returned certificate reads; nil
		// when there must be no certificate.
		tlsFiles []string
	}{
		{
			name: "defaults",
			want: &echo.Server{Addr: echo.DefaultAddr, BufferSize: echo.DefaultBufferSize, LogMaxBytes: echo.DefaultLogMaxBytes,
				UnixMode: 0o660, UDPRatePerSource: &defaultRate, ListenerOptions: noProxy},
		},
		{
			name: "every limit",
			args: []string{"--addr", "127.0.0.1:7", "--addr", "udp://127.0.0.1:7", "--buffer-size", "64", "--max-conns", "5", "--max-conns-per-ip", "2",
				"--idle-timeout", "1m", "--write-timeout", "30s", "--allow", "10.0.0.0/8,192.0.2.7", "--deny", "10.1.0.0/16",
				"--log-max-bytes", "0", "--busy-poll", "50us", "--unix-mode", "0600", "--udp-allow-low-ports", "--udp-rate-per-source", "0",
				"--greeting", "b {peer}"},
			want: &echo.Server{Addr: "127.0.0.1:7", BufferSize: 64, MaxConns: 5, MaxConnsPerIP: 2,
				IdleTimeout: time.Minute, WriteTimeout: 30 * time.Second,
				Allow:       []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")},
				Deny:        []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
				LogMaxBytes: -1, BusyPoll: 50 * time.Microsecond, UnixMode: 0o600, UDPAllowLowPorts: true, UDPRatePerSource: &noRate,
				Greeting: "b {peer}", ListenerOptions: noProxy},
		},
		{
			name: "proxy protocol",
			args: []string{"--addr", "127.0.0.1:7", "--addr", "unix:///tmp/e.sock?proxy-protocol=off", "--proxy-protocol", "on",
				"--proxy-trusted", "10.0.0.0/8,192.0.2.7", "--proxy-timeout", "2s"},
			want: &echo.Server{Addr: "127.0.0.1:7", BufferSize: echo.DefaultBufferSize, LogMaxBytes: echo.DefaultLogMaxBytes,
				UnixMode: 0o660, UDPRatePerSource: &defaultRate, ListenerOptions: echo.ListenerOptions{ProxyProtocol: true,
					ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}, ProxyTimeout: 2 * time.Second}},
		},
		{
			name: "defer-accept off",
			args: []string{"--addr", "127.0.0.1:7", "--defer-accept", "off"},
			want: &echo.Server{Addr: "127.0.0.1:7", BufferSize: echo.DefaultBufferSize, LogMaxBytes: echo.DefaultLogMaxBytes,
				UnixMode: 0o660, UDPRatePerSource: &defaultRate, ListenerOptions: echo.ListenerOptions{ProxyTimeout: echo.DefaultProxyTimeout, DisableDeferAccept: true}},
		},
		{
			name: "tls files",
			args: []string{"--addr", "tls://127.0.0.1:0", "--tls-cert", f.serverCert, "--tls-key", f.serverKey, "--tls-client-ca", f.caFile},
			want: &echo.Server{Addr: "tls://127.0.0.1:0", BufferSize: echo.DefaultBufferSize, LogMaxBytes: echo.DefaultLogMaxBytes,
				UnixMode: 0o660, UDPRatePerSource: &defaultRate, ListenerOptions: noProxy},
			tlsFiles: []string{f.serverCert, f.serverKey, f.caFile},
		},
		{
			name: "tls self-signed",
			args: []string{"--addr", "tls://127.0.0.1:0", "--tls-self-signed"},
			want: &echo.Server{Addr: "tls://127.0.0.1:0", BufferSize: echo.DefaultBufferSize, LogMaxBytes: echo.DefaultLogMaxBytes,
				UnixMode: 0o660, UDPRatePerSource: &defaultRate, ListenerOptions: noProxy},
			tlsFiles: []string{"", "", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			cfg := mustLoad(t, append([]string{"serve"}, tt.args...)...)
			logger := zerolog.New(&bytes.Buffer{})
			observer := metrics.New(metrics.BuildInfo{})
			srv, certs, err := newServer(cfg, logger, observer)
			if err != nil {
				t.Fatalf("newServer: %v", err)
			}
			if srv.Observer != echo.Observer(observer) {
				t.Errorf("Observer = %v, want the one given", srv.Observer)
			}
			if (srv.TLSConfig != nil) != (tt.tlsFiles != nil) || (certs != nil) != (tt.tlsFiles != nil) {
				t.Errorf("TLSConfig %v, certificate %v; want them set: %v", srv.TLSConfig != nil, certs != nil, tt.tlsFiles != nil)
			}
			if certs != nil {
				cert, key, ca := certs.Files()
				if got := []string{cert, key, ca}; !reflect.DeepEqual(got, tt.tlsFiles) {
					t.Errorf("certificate files %q, want %q", got, tt.tlsFiles)
				}
			}
			srv.Logger, srv.Observer, srv.TLSConfig = zerolog.Logger{}, nil, nil
			if !reflect.DeepEqual(srv, tt.want) {
				t.Errorf("server\n got %+v\nwant %+v", srv, tt.want)
			}
		})
	}
}

// TestNewServerWarnsUnusedTLS: TLS settings without a tls:// address are
// warned about, and give no certificate.
func TestNewServerWarnsUnusedTLS(t *testing.T) {
	isolate(t)
	cfg := mustLoad(t, "serve", "--tls-self-signed")
	srv, certs, err := newServer(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.TLSConfig != nil || certs != nil || srv.Observer != nil {
		t.Errorf("TLSConfig %v, certificate %v, Observer %v; want none", srv.TLSConfig, certs, srv.Observer)
	}
	if want := "TLS: tls-self-signed set, but no --addr is tls://: ignored"; !slices.Contains(cfg.Warnings, want) {
		t.Errorf("warnings %q lack %q", cfg.Warnings, want)
	}
	f := newTLSFiles(t)
	cfg = mustLoad(t, "serve", "--tls-cert", f.serverCert, "--tls-key", f.serverKey)
	if want := "TLS: tls-cert and tls-key set, but no --addr is tls://: ignored"; !slices.Contains(cfg.Warnings, want) {
		t.Errorf("warnings %q lack %q", cfg.Warnings, want)
	}
}

// TestServeListenerOptionErrors: a bad per-listener key, in a flag, the
// environment or an address's query, is a usage error (exit code 2) in
// one line.
func TestServeListenerOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "flag value", args: []string{"serve", "--proxy-protocol", "yes"},
			want: `invalid proxy-protocol "yes" from flag --proxy-protocol: want on or off`},
		{name: "flag upper case", args: []string{"serve", "--proxy-protocol", "ON"},
			want: `invalid proxy-protocol "ON" from flag --proxy-protocol: want on or off`},
		{name: "flag a client's value", args: []string{"serve", "--proxy-protocol", "v2"},
			want: `invalid proxy-protocol "v2" from flag --proxy-protocol: want on or off`},
		{name: "send takes a version", args: []string{"send", "--proxy-protocol", "on"},
			want: `invalid proxy-protocol "on" from flag --proxy-protocol: must be v1 or v2`},
		{name: "env timeout", args: []string{"serve"}, env: map[string]string{"ECHOCTL_PROXY_TIMEOUT": "0"},
			want: `invalid proxy-timeout "0" from environment ECHOCTL_PROXY_TIMEOUT: want a duration such as 5s, more than 0 and at most 10000h`},
		{name: "flag trusted", args: []string{"serve", "--proxy-trusted", "10.0.0.0/33"},
			want: `invalid proxy-trusted ["10.0.0.0/33"] from flag --proxy-trusted: "10.0.0.0/33" is not an IP address or a CIDR prefix such as 10.0.0.0/8`},
		{name: "query on udp", args: []string{"serve", "--addr", "udp://127.0.0.1:0?proxy-protocol=on"},
			want: `invalid addr "udp://127.0.0.1:0?proxy-protocol=on" from flag --addr: PROXY protocol is not supported on udp:// listeners`},
		{name: "query unknown key", args: []string{"serve", "--addr", "tcp://127.0.0.1:0?proxy=on"},
			want: `invalid addr "tcp://127.0.0.1:0?proxy=on" from flag --addr: unknown option "proxy": want proxy-protocol, proxy-trusted, proxy-timeout, defer-accept or fault-KEY (KEY: delay, jitter, rate, slice, slice-delay, close-after, reset-after, stall-after, corrupt, refuse, drop, duplicate, reorder, share)`},
		{name: "query unknown fault key", args: []string{"serve", "--addr", "tcp://127.0.0.1:0?fault-delays=50ms"},
			want: `invalid addr "tcp://127.0.0.1:0?fault-delays=50ms" from flag --addr: unknown option "fault-delays": want proxy-protocol, proxy-trusted, proxy-timeout, defer-accept or fault-KEY (KEY: delay, jitter, rate, slice, slice-delay, close-after, reset-after, stall-after, corrupt, refuse, drop, duplicate, reorder, share)`},
		{name: "query bad fault value", args: []string{"serve", "--addr", "tcp://127.0.0.1:0?fault-share=2"},
			want: `invalid addr "tcp://127.0.0.1:0?fault-share=2" from flag --addr: option fault-share "2": "2" is not a probability from 0 to 1 (0.01 or 1%)`},
		{name: "query stream fault on udp", args: []string{"serve", "--addr", "udp://127.0.0.1:0?fault-reset-after=1KiB"},
			want: `invalid addr "udp://127.0.0.1:0?fault-reset-after=1KiB" from flag --addr: fault-reset-after is not supported on udp:// listeners`},
		{name: "defer-accept value", args: []string{"serve"}, env: map[string]string{"ECHOCTL_DEFER_ACCEPT": "later"},
			want: `invalid defer-accept "later" from environment ECHOCTL_DEFER_ACCEPT: want on or off`},
		{name: "query defer-accept on unix", args: []string{"serve", "--addr", "unix:///tmp/e.sock?defer-accept=off"},
			want: `invalid addr "unix:///tmp/e.sock?defer-accept=off" from flag --addr: defer-accept is not supported on unix:// listeners`},
		{name: "query bad value", args: []string{"serve", "--addr", "unix:///tmp/e.sock?proxy-protocol=1"},
			want: `invalid addr "unix:///tmp/e.sock?proxy-protocol=1" from flag --addr: option proxy-protocol "1": want on or off`},
		{name: "query on send", args: []string{"send", "--addr", "tcp://127.0.0.1:9?proxy-protocol=on"},
			want: `invalid addr "tcp://127.0.0.1:9?proxy-protocol=on" from flag --addr: unexpected "?proxy-protocol=on" after host:port (a tcp:// address is only host:port)`},
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

// TestServeProxyProtocol: serve --proxy-protocol on reads a PROXY header
// before the echo, never echoes it, and logs the connection under the
// client the header names, with the balancer as via.
func TestServeProxyProtocol(t *testing.T) {
	p := startServe(t, "--proxy-protocol", "on")
	c, err := net.DialTimeout("tcp", p.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write([]byte("PROXY TCP4 203.0.113.7 10.0.0.5 41000 9000\r\nhello\n")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello\n" {
		t.Fatalf("read %q, %v; want the echo alone", got, err)
	}
	p.waitLogLine(t, "echo_203.0.113.7_41000", "closing")
	for _, l := range jsonLines(t, p.stderr.String()) {
		if l["logger"] == "echo_203.0.113.7_41000" && l["via"] != c.LocalAddr().String() {
			t.Errorf("line %v: want via %s, the balancer", l, c.LocalAddr())
		}
	}
}

// TestServeListenerOptionSources: the per-listener keys come from a
// config file (YAML and TOML) and the environment as from flags.
func TestServeListenerOptionSources(t *testing.T) {
	want := echo.ListenerOptions{ProxyProtocol: true, ProxyTimeout: 2 * time.Second,
		ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}}
	for _, tc := range []struct {
		name, file, content string
		env                 map[string]string
	}{
		{name: "yaml", file: "c.yaml", content: "proxy-protocol: on\nproxy-trusted: [10.0.0.0/8, 192.0.2.7]\nproxy-timeout: 2s\n"},
		{name: "yaml true", file: "c.yaml", content: "proxy-protocol: true\nproxy-trusted: 10.0.0.0/8,192.0.2.7\nproxy-timeout: 2s\n"},
		{name: "toml", file: "c.toml", content: "proxy-protocol = \"on\"\nproxy-trusted = [\"10.0.0.0/8\", \"192.0.2.7\"]\nproxy-timeout = \"2s\"\n"},
		{name: "env", env: map[string]string{"ECHOCTL_PROXY_PROTOCOL": "on", "ECHOCTL_PROXY_TRUSTED": "10.0.0.0/8,192.0.2.7", "ECHOCTL_PROXY_TIMEOUT": "2s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			args := []string{"serve"}
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, filepath.Join(dir, tc.file), tc.content))
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if got := mustLoad(t, args...).Listener; !reflect.DeepEqual(got, want) {
				t.Errorf("Listener = %+v, want %+v", got, want)
			}
		})
	}
}

// TestSelfSignedHosts: a self-signed certificate names the host of each
// tls:// address; for every interface (an empty host, 0.0.0.0 or [::]) the
// machine's host name instead of the unspecified address, and an IPv6
// address without its zone.
func TestSelfSignedHosts(t *testing.T) {
	hn, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		addr      string
		want, not []string
	}{
		{"tls://:0", []string{hn, "localhost", "127.0.0.1", "::1"}, nil},
		{"tls://0.0.0.0:0", []string{hn}, []string{"0.0.0.0"}},
		{"tls://[::]:0", []string{hn}, []string{"::"}},
		{"tls://[::1%lo]:0", []string{"::1"}, []string{"::1%lo", hn}},
	}
	for _, tt := range tests {
		ts, err := serverCertificate(TransportConfig{TLSSelfSigned: true}, []string{tt.addr}, zerolog.Nop())
		if err != nil {
			t.Fatalf("%s: %v", tt.addr, err)
		}
		hosts := tlsconfig.Hosts(ts.Certificate())
		for _, h := range tt.want {
			if !slices.Contains(hosts, h) {
				t.Errorf("%s: certificate for %q, want %q in it", tt.addr, hosts, h)
			}
		}
		for _, h := range tt.not {
			if slices.Contains(hosts, h) {
				t.Errorf("%s: certificate for %q, want no %q", tt.addr, hosts, h)
			}
		}
	}
}

package cmd

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/internal/metrics"
	"github.com/echoctl/echoctl/pkg/echo"
)

// TestNewServer: newServer sets every echo.Server field that a key
// configures, from the configuration loaded for the flags given, and
// returns the TLS certificate when an address is tls://.
func TestNewServer(t *testing.T) {
	f := newTLSFiles(t)
	defaultRate := echo.PacketRate{Datagrams: echo.DefaultUDPDatagramsPerSource, Bytes: echo.DefaultUDPBytesPerSource}
	noRate := echo.PacketRate{}
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
				UnixMode: 0o660, UDPRatePerSource: &defaultRate},
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
				Greeting: "b {peer}"},
		},
		{
			name: "tls files",
			args: []string{"--addr", "tls://127.0.0.1:0", "--tls-cert", f.serverCert, "--tls-key", f.serverKey, "--tls-client-ca", f.caFile},
			want: &echo.Server{Addr: "tls://127.0.0.1:0", BufferSize: echo.DefaultBufferSize, LogMaxBytes: echo.DefaultLogMaxBytes,
				UnixMode: 0o660, UDPRatePerSource: &defaultRate},
			tlsFiles: []string{f.serverCert, f.serverKey, f.caFile},
		},
		{
			name: "tls self-signed",
			args: []string{"--addr", "tls://127.0.0.1:0", "--tls-self-signed"},
			want: &echo.Server{Addr: "tls://127.0.0.1:0", BufferSize: echo.DefaultBufferSize, LogMaxBytes: echo.DefaultLogMaxBytes,
				UnixMode: 0o660, UDPRatePerSource: &defaultRate},
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
	var logs bytes.Buffer
	srv, certs, err := newServer(cfg, zerolog.New(&logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.TLSConfig != nil || certs != nil || srv.Observer != nil {
		t.Errorf("TLSConfig %v, certificate %v, Observer %v; want none", srv.TLSConfig, certs, srv.Observer)
	}
	if want := "TLS: tls-self-signed set, but no --addr is tls://: ignored"; !strings.Contains(logs.String(), want) {
		t.Errorf("log %q lacks %q", logs.String(), want)
	}
}

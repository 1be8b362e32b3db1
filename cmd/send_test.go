package cmd

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestNewClient: newClient sets every echo.Client field that a key
// configures, from the configuration loaded for the flags given, and TLS
// only for a tls:// address.
func TestNewClient(t *testing.T) {
	f := newTLSFiles(t)
	tests := []struct {
		name    string
		args    []string
		want    *echo.Client // without Logger and TLSConfig
		wantTLS bool
	}{
		{
			name: "defaults",
			want: &echo.Client{Addr: echo.DefaultAddr, BufferSize: echo.DefaultBufferSize, Timeout: 10 * time.Second,
				Retries: echo.DefaultRetries, LogMaxBytes: echo.DefaultLogMaxBytes},
		},
		{
			name: "every key",
			args: []string{"--addr", "udp://127.0.0.1:7", "--buffer-size", "64", "--timeout", "0", "--retries", "5", "--log-max-bytes", "0"},
			want: &echo.Client{Addr: "udp://127.0.0.1:7", BufferSize: 64, Retries: 5, LogMaxBytes: -1},
		},
		{
			// echo.Client's zero Retries is its default; none is -1.
			name: "no retries",
			args: []string{"--retries", "0"},
			want: &echo.Client{Addr: echo.DefaultAddr, BufferSize: echo.DefaultBufferSize, Timeout: 10 * time.Second,
				Retries: -1, LogMaxBytes: echo.DefaultLogMaxBytes},
		},
		{
			name: "tls",
			args: []string{"--addr", "tls://127.0.0.1:7", "--tls-ca", f.caFile, "--tls-cert", f.clientCert, "--tls-key", f.clientKey},
			want: &echo.Client{Addr: "tls://127.0.0.1:7", BufferSize: echo.DefaultBufferSize, Timeout: 10 * time.Second,
				Retries: echo.DefaultRetries, LogMaxBytes: echo.DefaultLogMaxBytes},
			wantTLS: true,
		},
		{
			// The TLS keys do nothing without a tls:// address.
			name: "tls keys, tcp address",
			args: []string{"--tls-ca", f.caFile},
			want: &echo.Client{Addr: echo.DefaultAddr, BufferSize: echo.DefaultBufferSize, Timeout: 10 * time.Second,
				Retries: echo.DefaultRetries, LogMaxBytes: echo.DefaultLogMaxBytes},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			cfg := mustLoad(t, append([]string{"send"}, tt.args...)...)
			client, err := newClient(cfg, zerolog.New(&bytes.Buffer{}))
			if err != nil {
				t.Fatalf("newClient: %v", err)
			}
			if got := client.TLSConfig != nil; got != tt.wantTLS {
				t.Errorf("TLSConfig set: %v, want %v", got, tt.wantTLS)
			}
			if tt.wantTLS && (client.TLSConfig.RootCAs == nil || client.TLSConfig.GetClientCertificate == nil) {
				t.Errorf("TLSConfig has no CA pool or not the client certificate")
			}
			client.Logger, client.TLSConfig = zerolog.Logger{}, nil
			if !reflect.DeepEqual(client, tt.want) {
				t.Errorf("client\n got %+v\nwant %+v", client, tt.want)
			}
		})
	}
}

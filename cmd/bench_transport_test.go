package cmd

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
)

// benchServe serves addrs with echoctl's server in this process until the
// test ends (UDP without its per-source rate limit), with cert for tls://
// addresses, and returns the bound addresses.
func benchServe(t *testing.T, cert *certtest.Leaf, addrs ...string) []string {
	t.Helper()
	srv := &echo.Server{UDPRatePerSource: &echo.PacketRate{}}
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	}
	b, err := srv.Bind(t.Context(), addrs...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeBound(b) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return b.Addrs()
}

func TestBenchTransports(t *testing.T) {
	benchIsolate(t)
	dir := t.TempDir()
	ca := certtest.NewCA(t, "bench CA")
	leaf := ca.Issue(t, certtest.Options{CommonName: "bench server", Hosts: []string{"127.0.0.1"}})
	caFile := ca.WriteFile(t, dir, "ca.pem")
	addrs := benchServe(t, leaf, "udp://127.0.0.1:0", "tls://127.0.0.1:0", "unix://"+filepath.Join(dir, "echo.sock"))
	udp, tlsAddr, unix := addrs[0], addrs[1], addrs[2]
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"udp", []string{"--addr", udp, "--rate", "500", "--conns", "2", "--size", "256"},
			[]string{"pingpong: 2 sockets, 256 B datagrams, at 500 datagrams/s", "datagrams/s", "0 lost (0.00%), ", " reordered, 0 duplicates", "jitter"}},
		// A longer warmup: both connections' handshakes must be done when
		// measuring begins, on a machine that may be busy.
		{"tls pingpong", []string{"--addr", tlsAddr, "--tls-ca", caFile, "--conns", "2", "--warmup", "500ms"},
			[]string{"pingpong: 2 connections", "2 handshakes, 0 resumed a session"}},
		{"tls connrate resuming", []string{"--addr", tlsAddr, "--tls-ca", caFile, "--mode", "connrate", "--tls-resume"},
			[]string{"connections/s", "resumed a session"}},
		{"unix stream", []string{"--addr", unix, "--mode", "stream"}, []string{"stream: 1 connection", "MB/s"}},
		{"unix idle", []string{"--addr", unix, "--mode", "idle", "--conns", "20"}, []string{"20 of 20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"bench"}, short...), tt.args...)
			code, stdout, stderr := benchRun(t, args...)
			if code != ExitOK || stderr != "" {
				t.Fatalf("exit code %d, stderr %q\n%s", code, stderr, stdout)
			}
			for _, want := range tt.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("table lacks %q:\n%s", want, stdout)
				}
			}
			if !regexp.MustCompile(`(?m)^errors +none$`).MatchString(stdout) {
				t.Errorf("table has errors:\n%s", stdout)
			}
		})
	}

	t.Run("tls without the CA", func(t *testing.T) {
		code, _, stderr := benchRun(t, append([]string{"bench", "--addr", tlsAddr}, short...)...)
		if code != ExitNetwork || !strings.Contains(stderr, "certificate") {
			t.Errorf("exit code %d, stderr %q; want 1 and the certificate refused", code, stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := benchRun(t, append([]string{"bench", "--json", "--addr", tlsAddr, "--tls-ca", caFile, "--mode", "connrate", "--tls-resume"}, short...)...)
		if code != ExitOK {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		var res bench.Result
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		if res.TLS == nil || res.TLS.Handshakes != res.Connects || res.TLS.Resumed == 0 || res.UDP != nil {
			t.Errorf("tls %+v, udp %+v, connects %d", res.TLS, res.UDP, res.Connects)
		}
		code, stdout, stderr = benchRun(t, append([]string{"bench", "--json", "--addr", udp, "--rate", "300"}, short...)...)
		if code != ExitOK {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
			t.Fatal(err)
		}
		u, _ := raw["udp"].(map[string]any)
		for _, k := range []string{"sent", "received", "lost", "loss_percent", "reordered", "duplicates", "jitter_us"} {
			if _, ok := u[k]; !ok {
				t.Errorf("udp object lacks %q: %s", k, stdout)
			}
		}
		if raw["messages"] != u["received"] || u["sent"].(float64) < 50 {
			t.Errorf("messages %v, udp %v", raw["messages"], u)
		}
	})
}

// TestBenchUDPMismatchExits3 runs against a UDP server that changes the
// last byte of each datagram.
func TestBenchUDPMismatchExits3(t *testing.T) {
	benchIsolate(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, peer, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			buf[n-1]++
			pc.WriteTo(buf[:n], peer)
		}
	}()
	start := time.Now()
	code, stdout, stderr := benchRun(t, "bench", "--addr", "udp://"+pc.LocalAddr().String(), "--rate", "100", "--warmup", "0s", "--duration", "300ms", "--op-timeout", "200ms")
	if code != ExitMismatch || !strings.Contains(stderr, "datagram 1 differs") || !strings.Contains(stdout, "mismatch") {
		t.Errorf("exit code %d, stdout %q, stderr %q; want 3 and the first datagram named", code, stdout, stderr)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
}

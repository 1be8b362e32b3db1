package cmd

import (
	"net"
	"slices"
	"strings"
	"testing"
)

// TestServeFailedBindLogsNothing: a start that fails to bind logs neither
// the TLS certificate nor the metrics address, which would tell a reader
// that something was served; stderr holds only the error line.
func TestServeFailedBindLogsNothing(t *testing.T) {
	files := newTLSFiles(t)
	tests := []struct {
		name string
		args func(taken, free string) []string
		not  string // what must not be logged
	}{
		{"metrics on the echo address", func(_, free string) []string {
			return []string{"--addr", free, "--metrics-addr", free}
		}, "serving metrics"},
		{"self-signed certificate", func(taken, _ string) []string {
			return []string{"--addr", "tls://" + taken, "--tls-self-signed"}
		}, "fingerprint"},
		{"certificate files", func(taken, _ string) []string {
			return []string{"--addr", "tls://" + taken, "--tls-cert", files.serverCert, "--tls-key", files.serverKey}
		}, "fingerprint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			free, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			free.Close() // free a moment ago: the metrics server takes it first
			r := run(t, t.Context(), append([]string{"serve"}, tt.args(ln.Addr().String(), free.Addr().String())...)...)
			if r.code != ExitNetwork {
				t.Errorf("exit code %d, want %d; stderr %q", r.code, ExitNetwork, r.stderr)
			}
			if strings.Contains(r.stderr, tt.not) || !strings.Contains(r.stderr, "address already in use") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want only the bind error, no %q", r.stderr, tt.not)
			}
		})
	}
}

// TestServeStartupLines: on a start that binds, the metrics address is
// logged before the start-up line, and TLS settings with no tls:// address
// to apply to are warned about.
func TestServeStartupLines(t *testing.T) {
	isolate(t)
	files := newTLSFiles(t)
	p := startServe(t, "--metrics-addr", "127.0.0.1:0", "--tls-self-signed", "--tls-client-ca", files.caFile)
	lines := jsonLines(t, p.stderr.String())
	msgs := make([]string, len(lines))
	for i, l := range lines {
		msgs[i], _ = l["message"].(string)
	}
	metrics := slices.IndexFunc(msgs, func(m string) bool { return strings.HasPrefix(m, "serving metrics on http://127.0.0.1:") })
	start := slices.IndexFunc(msgs, func(m string) bool { return strings.HasPrefix(m, "starting up on ") })
	if metrics < 0 || metrics > start {
		t.Errorf("want a serving metrics line before the start-up line:\n%s", p.stderr)
	}
	const warning = "TLS: tls-self-signed and tls-client-ca set, but no --addr is tls://: ignored"
	if i := slices.Index(msgs, warning); i < 0 || lines[i]["level"] != "warn" {
		t.Errorf("want the warning %q:\n%s", warning, p.stderr)
	}
}

// TestServeStoppedWhileStarting: SIGINT or SIGTERM (a cancelled context)
// while serve looks up its names and binds stops it as cleanly as one
// that comes later: exit 0, not the error of the lookup it cut short
// ("lookup localhost: operation was canceled").
func TestServeStoppedWhileStarting(t *testing.T) {
	isolate(t)
	r := run(t, cancelledContext(), "serve", "--addr", "localhost:0", "--metrics-addr", "localhost:0")
	if r.code != ExitOK || strings.Contains(r.stderr, "canceled") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = run(t, cancelledContext(), "serve", "--addr", "localhost:0")
	if r.code != ExitOK || strings.Contains(r.stderr, "canceled") {
		t.Fatalf("without metrics: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

package cmd

import (
	"slices"
	"strings"
	"testing"
)

// TestServeWarnsUnused: each group of serve's settings that does nothing
// with its addresses is warned about once; set where it acts, or left at
// its default, it is not.
func TestServeWarnsUnused(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--unix-mode", "0600"}, []string{"Unix sockets: unix-mode set, but no --addr is unix://: ignored"}},
		{[]string{"--unix-mode", "0600", "--addr", "unix:///tmp/echoctl-unused.sock"}, nil},
		{[]string{"--udp-allow-low-ports", "--udp-rate-per-source", "0"}, []string{"UDP: udp-allow-low-ports and udp-rate-per-source set, but no --addr is udp://: ignored"}},
		{[]string{"--udp-allow-low-ports", "--addr", "udp://127.0.0.1:0"}, nil},
		{[]string{"--proxy-trusted", "10.0.0.0/8", "--proxy-timeout", "2s"}, []string{"PROXY protocol: proxy-trusted and proxy-timeout set, but no --addr reads PROXY headers (proxy-protocol on, on a TCP, TLS or Unix address): ignored"}},
		{[]string{"--proxy-protocol", "on", "--addr", "udp://127.0.0.1:0"}, []string{"PROXY protocol: proxy-protocol set, but no --addr reads PROXY headers (proxy-protocol on, on a TCP, TLS or Unix address): ignored"}},
		{[]string{"--proxy-timeout", "2s", "--addr", "127.0.0.1:10001", "--addr", "tcp://127.0.0.1:10002?proxy-protocol=on"}, nil},
		{[]string{"--proxy-timeout", "2s", "--proxy-protocol", "on"}, nil},
		{[]string{"--defer-accept", "off", "--addr", "udp://127.0.0.1:0", "--addr", "unix:///tmp/echoctl-unused.sock"}, []string{"TCP: defer-accept set, but no --addr is TCP or TLS: ignored"}},
		{[]string{"--defer-accept", "off", "--addr", "tls://127.0.0.1:0", "--tls-self-signed"}, nil},
		{[]string{"--fault-slice-delay", "2s"}, []string{"faults: fault-slice-delay set, but fault-slice is not: ignored"}},
		{[]string{"--fault-slice-delay", "2s", "--fault-slice", "4"}, nil},
		{[]string{"--fault-drop", "0.5", "--fault-reorder", "0.1"}, []string{"faults: fault-drop and fault-reorder set, but no --addr is udp://: ignored"}},
		{[]string{"--fault-rate", "1KiB/s", "--fault-refuse", "0.5", "--fault-delay", "1ms", "--addr", "udp://127.0.0.1:0"}, []string{"faults: fault-rate and fault-refuse set, but no --addr is tcp://, tls:// or unix://: ignored"}},
		{[]string{"--fault-rate", "1KiB/s", "--fault-drop", "0.5", "--addr", "udp://127.0.0.1:0", "--addr", "127.0.0.1:0"}, nil},
		{[]string{"--fault-drop", "0.5", "--addr", "udp://127.0.0.1:0"}, nil},
		{[]string{"--fault-share", "0.5"}, []string{"faults: fault-share set, but no fault is set: ignored"}},
		{[]string{"--fault-share", "0.5", "--addr", "tcp://127.0.0.1:0?fault-delay=1ms"}, nil},
		// A listener's own options, in its address's query.
		{[]string{"--addr", "tcp://127.0.0.1:0?proxy-trusted=10.0.0.0/8"}, []string{"tcp://127.0.0.1:0?proxy-trusted=10.0.0.0/8: proxy-trusted set, but proxy-protocol is off on this listener: ignored"}},
		{[]string{"--addr", "tcp://127.0.0.1:0?proxy-protocol=on&proxy-trusted=10.0.0.0/8"}, nil},
		{[]string{"--addr", "tcp://127.0.0.1:0?fault-slice-delay=10ms"}, []string{"tcp://127.0.0.1:0?fault-slice-delay=10ms: fault-slice-delay set, but fault-slice is not set for this listener: ignored"}},
		{[]string{"--fault-slice", "2", "--addr", "tcp://127.0.0.1:0?fault-slice-delay=10ms"}, nil},
		{[]string{"--addr", "tcp://127.0.0.1:0?fault-share=0.5"}, []string{"tcp://127.0.0.1:0?fault-share=0.5: fault-share set, but no fault is set for this listener: ignored"}},
		{[]string{"--addr", "tcp://127.0.0.1:0?fault-share=0.5&fault-delay=1ms"}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			isolate(t)
			cfg, err := loadFor(t, append([]string{"serve"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Warnings, tt.want) {
				t.Errorf("warnings %q, want %q", cfg.Warnings, tt.want)
			}
		})
	}
}

// TestClientWarnsUnused: send's, ping's and bench's TLS settings without a
// tls:// address, and send's retries without a udp:// one, are warned
// about; where they act, they are not.
func TestClientWarnsUnused(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"send", "--addr", "127.0.0.1:1", "--tls-insecure", "--tls-server-name", "x"}, []string{"TLS: tls-server-name and tls-insecure set, but --addr is not tls://: ignored"}},
		{[]string{"ping", "--addr", "unix:///tmp/e.sock", "--tls-server-name", "x"}, []string{"TLS: tls-server-name set, but --addr is not tls://: ignored"}},
		{[]string{"bench", "--addr", "udp://127.0.0.1:1", "--tls-insecure"}, []string{"TLS: tls-insecure set, but --addr is not tls://: ignored"}},
		{[]string{"send", "--addr", "tls://127.0.0.1:1", "--tls-insecure", "--tls-server-name", "x"}, nil},
		{[]string{"send", "--addr", "127.0.0.1:1", "--retries", "5"}, []string{"UDP: retries set, but --addr is not udp://: ignored"}},
		{[]string{"send", "--addr", "udp://127.0.0.1:1", "--retries", "5"}, nil},
		{[]string{"send", "--addr", "127.0.0.1:1"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			isolate(t)
			cfg, err := loadFor(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Warnings, tt.want) {
				t.Errorf("warnings %q, want %q", cfg.Warnings, tt.want)
			}
		})
	}
}

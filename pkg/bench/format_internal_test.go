package bench

import (
	"strings"
	"testing"
)

func TestLoadNote(t *testing.T) {
	for _, tt := range []struct {
		percent float64
		cpus    int
		limit   bool
	}{
		{98, 1, true},
		{90, 1, false},
		{98, 2, false}, // half of what it could use
		{195, 2, true},
	} {
		if got := loadNote(tt.percent, tt.cpus); strings.Contains(got, "the load was the limit") != tt.limit {
			t.Errorf("loadNote(%v, %d) = %q, want the limit said: %v", tt.percent, tt.cpus, got, tt.limit)
		}
	}
}

// TestPerSecond: a rate under 100 a second keeps three significant
// digits; --rate 0.5 printed "0 messages/s".
func TestPerSecond(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 2.25: "2.25", 12.345: "12.3", 99.4: "99.4", 100: "100", 12345.6: "12346"} {
		if got := perSecond(v); got != want {
			t.Errorf("perSecond(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestUDPTableRows: a UDP run's table says when the senders offered less
// than the rate scheduled, and gives no jitter figure without two echoes
// to take it from (it read 0.0µs with none).
func TestUDPTableRows(t *testing.T) {
	tests := []struct {
		name      string
		udp       UDPStats
		want, not string
	}{
		{"on schedule", UDPStats{Sent: 1000, Scheduled: 1000, Received: 1000, Jitter: 12, JitterSockets: 1}, "jitter      12.0µs", "behind"},
		{"behind", UDPStats{Sent: 994, Scheduled: 1000, Received: 994, Jitter: 12, JitterSockets: 1}, "behind      994 sent of the 1000 the rate scheduled", ""},
		{"nothing back", UDPStats{Sent: 200, Scheduled: 200, Lost: 200, LossPercent: 100}, "jitter      none: no socket had two echoes", "0.0µs"},
		{"one echo a socket", UDPStats{Sent: 2, Scheduled: 2, Received: 2}, "jitter      none: no socket had two echoes", "0.0µs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.udp
			res := &Result{Mode: ModePingPong, Conns: 1, Size: 64, Rate: 1000, UDP: &u}
			var b strings.Builder
			if err := res.WriteTable(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) || tt.not != "" && strings.Contains(b.String(), tt.not) {
				t.Errorf("table:\n%s\nwant %q, and not %q", b.String(), tt.want, tt.not)
			}
		})
	}
}

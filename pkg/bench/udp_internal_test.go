package bench

import (
	"testing"
	"time"
)

// TestUDPStatsJitterMean: the run's jitter is the mean of the sockets
// that have an estimate (two echoes or more); a socket that got nothing
// back does not pull it down as a zero.
func TestUDPStatsJitterMean(t *testing.T) {
	ms := float64(time.Millisecond)
	tests := []struct {
		name  string
		socks []*udpSocket
		want  float64 // µs
	}{
		{"two with jitter", []*udpSocket{{jitter: 10 * ms, hasJitter: true}, {jitter: 20 * ms, hasJitter: true}}, 15000},
		{"one got no echo", []*udpSocket{{jitter: 19 * ms, hasJitter: true}, {}}, 19000},
		{"one echo is no estimate", []*udpSocket{{jitter: 19 * ms, hasJitter: true}, {hasTransit: true}}, 19000},
		{"none", []*udpSocket{{}, {}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.socks {
				s.winLo = -1
			}
			if got := udpStats(tt.socks).Jitter; got != tt.want {
				t.Errorf("Jitter = %v µs, want %v", got, tt.want)
			}
		})
	}
}

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

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

package echo

import (
	"testing"
	"time"
)

// TestSliceLine: the slice fault's line, singular for one byte and with
// no "0s apart" when there is no wait.
func TestSliceLine(t *testing.T) {
	for _, tt := range []struct {
		size  int
		delay time.Duration
		want  string
	}{
		{8, 100 * time.Millisecond, "fault: writing echoes 8 bytes at a time, 100ms apart"},
		{1, 0, "fault: writing echoes 1 byte at a time"},
		{4, 0, "fault: writing echoes 4 bytes at a time"},
	} {
		if got := sliceLine(tt.size, tt.delay); got != tt.want {
			t.Errorf("sliceLine(%d, %v) = %q, want %q", tt.size, tt.delay, got, tt.want)
		}
	}
}

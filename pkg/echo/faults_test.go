package echo_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestFaultsSet: each key parses its value into its field, and Settings
// shows it back; bad values are one-line errors naming the key.
func TestFaultsSet(t *testing.T) {
	cases := []struct {
		key, value string
		want       echo.Faults
		setting    string // "" for none
	}{
		{"delay", "50ms", echo.Faults{Delay: 50 * time.Millisecond}, "delay=50ms"},
		{"jitter", "10ms", echo.Faults{Jitter: 10 * time.Millisecond}, "jitter=10ms"},
		{"rate", "256KiB/s", echo.Faults{Rate: 256 << 10}, "rate=256KiB/s"},
		{"rate", "1000", echo.Faults{Rate: 1000}, "rate=1000/s"},
		{"rate", "0", echo.Faults{}, ""},
		{"slice", "16", echo.Faults{Slice: 16}, "slice=16"},
		{"slice-delay", "5ms", echo.Faults{SliceDelay: 5 * time.Millisecond}, ""},
		{"close-after", "1024", echo.Faults{CloseAfter: echo.FaultAfter{Bytes: 1024}}, "close-after=1KiB"},
		{"reset-after", "64KiB", echo.Faults{ResetAfter: echo.FaultAfter{Bytes: 64 << 10}}, "reset-after=64KiB"},
		{"stall-after", "2s", echo.Faults{StallAfter: echo.FaultAfter{Time: 2 * time.Second}}, "stall-after=2s"},
		{"corrupt", "0.01", echo.Faults{Corrupt: 0.01}, "corrupt=0.01"},
		{"refuse", "10%", echo.Faults{Refuse: 0.1}, "refuse=0.1"},
		{"share", "0.5", echo.Faults{Share: 0.5}, ""},
		{"delay", "", echo.Faults{}, ""},
		// Zero of any unit turns a fault off, as 0 does.
		{"slice", "0B", echo.Faults{}, ""},
		{"rate", "0KiB/s", echo.Faults{}, ""},
		{"close-after", "0s", echo.Faults{}, ""},
		{"reset-after", "00", echo.Faults{}, ""},
		{"corrupt", "0.0000001%", echo.Faults{Corrupt: tinyPercent / 100}, "corrupt=1e-09"},
	}
	for _, tc := range cases {
		var f echo.Faults
		if err := f.Set(tc.key, tc.value); err != nil {
			t.Errorf("Set(%q, %q): %v", tc.key, tc.value, err)
			continue
		}
		if !faultsEqual(f, tc.want) {
			t.Errorf("Set(%q, %q) = %+v, want %+v", tc.key, tc.value, f, tc.want)
		}
		var want []string
		if tc.setting != "" {
			want = []string{tc.setting}
		}
		if got := f.Settings(); !slices.Equal(got, want) {
			t.Errorf("Set(%q, %q): Settings %q, want %q", tc.key, tc.value, got, want)
		}
	}
	bad := []struct{ key, value, says string }{
		{"delay", "soon", `invalid fault delay: "soon" is not a duration`},
		{"delay", "-1s", "not a duration from 0"},
		{"rate", "fast", "not a byte rate"},
		{"slice", "16x", "unknown unit"},
		{"slice", "1.5", `"1.5" is not a whole number of bytes`},
		{"slice", "0x", "not a byte count"},
		{"close-after", "0.5", "neither a byte count"},
		{"reset-after", "-3", "neither a byte count"},
		{"corrupt", "1.5", "not a probability"},
		{"refuse", "NaN", "not a probability"},
		{"share", "0", "a share above 0"},
		{"latency", "1s", `unknown key "latency"`},
	}
	for _, b := range bad {
		var f echo.Faults
		err := f.Set(b.key, b.value)
		if !errors.Is(err, echo.ErrInvalidFault) || !strings.Contains(err.Error(), b.says) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Set(%q, %q) = %v; want one line saying %q", b.key, b.value, err, b.says)
		}
	}
}

// tinyPercent is a variable: divided at run time, as Set divides, it is
// 9.999999999999999e-10, which Settings shows as 1e-09.
var tinyPercent = 0.0000001

// faultsEqual compares the settings of two Faults (Rand aside).
func faultsEqual(a, b echo.Faults) bool {
	a.Rand, b.Rand = nil, nil
	return a.Delay == b.Delay && a.Jitter == b.Jitter && a.Rate == b.Rate && a.Slice == b.Slice &&
		a.SliceDelay == b.SliceDelay && a.CloseAfter == b.CloseAfter && a.ResetAfter == b.ResetAfter &&
		a.StallAfter == b.StallAfter && a.Corrupt == b.Corrupt && a.Refuse == b.Refuse && a.Share == b.Share
}

// TestFaultsValidate: Serve refuses faults out of bounds, with
// ErrInvalidFault.
func TestFaultsValidate(t *testing.T) {
	for _, f := range []echo.Faults{
		{Delay: -time.Second},
		{Rate: -1},
		{Corrupt: 2},
		{Share: -0.5},
		{CloseAfter: echo.FaultAfter{Bytes: 10, Time: time.Second}},
	} {
		srv := &echo.Server{Faults: &f}
		if err := srv.Serve(listenLocal(t)); !errors.Is(err, echo.ErrInvalidFault) {
			t.Errorf("Serve with %+v = %v; want ErrInvalidFault", f, err)
		}
	}
}

// FuzzFaultsSet: whatever the text, Set returns an error or a valid
// setting, never panics, and what Settings shows parses back to the same.
func FuzzFaultsSet(f *testing.F) {
	for _, k := range echo.FaultKeys() {
		for _, v := range []string{"0", "1", "50ms", "64KiB", "256KiB/s", "0.5", "10%", "2s", "", " 7 B ", "1TiB", "99999999999999999999"} {
			f.Add(k, v)
		}
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		var faults echo.Faults
		if err := faults.Set(key, value); err != nil {
			if !errors.Is(err, echo.ErrInvalidFault) {
				t.Fatalf("Set(%q, %q) = %v, not ErrInvalidFault", key, value, err)
			}
			return
		}
		if err := faults.Validate(); err != nil {
			t.Fatalf("Set(%q, %q) accepted %+v, which Validate refuses: %v", key, value, faults, err)
		}
		var again echo.Faults
		for _, s := range faults.Settings() {
			k, v, _ := strings.Cut(s, "=")
			if err := again.Set(k, v); err != nil {
				t.Fatalf("Settings %q does not parse back: %v", s, err)
			}
		}
		if !slices.Equal(again.Settings(), faults.Settings()) {
			t.Fatalf("Settings %q parse back as %q", faults.Settings(), again.Settings())
		}
	})
}

// TestFaultAfterString: the text form round-trips.
func TestFaultAfterString(t *testing.T) {
	for _, s := range []string{"0", "1000", "1KiB", "3MiB", "2s", "1m30s"} {
		a, err := echo.ParseFaultAfter(s)
		if err != nil || a.String() != s {
			t.Errorf("ParseFaultAfter(%q) = %v (%q), %v", s, a, a.String(), err)
		}
	}
}

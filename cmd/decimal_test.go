package cmd

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestIntegerFlagsDecimal: every integer flag reads decimal only, as the
// environment and the config file do; a prefix pflag would read as another
// base is a usage error (exit 2), and leading zeros are decimal.
func TestIntegerFlagsDecimal(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the one line on stderr
	}{
		{[]string{"send", "--count", "0x10", "x"}, `invalid argument "0x10" for "--count" flag: "0x10" is not a decimal integer`},
		{[]string{"send", "--buffer-size", "0b11", "x"}, `"0b11" is not a decimal integer`},
		{[]string{"bench", "--conns", "1_0"}, `"1_0" is not a decimal integer`},
		{[]string{"serve", "--max-conns", "0o7"}, `"0o7" is not a decimal integer`},
		{[]string{"send", "--count", "", "x"}, `"" is not a decimal integer`},
		// Decimal, then the key's own range check.
		{[]string{"send", "--count", "-0", "x"}, "invalid --count 0: must be an integer from 1 to 1000000"},
		{[]string{"serve", "--max-conns", "-010"}, "invalid max-conns -10 from flag --max-conns"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			isolate(t)
			r := run(t, cancelledContext(), tt.args...)
			if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and one line with %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

// TestDecimalValueLeadingZeros: 010 is ten, not eight.
func TestDecimalValueLeadingZeros(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	n := fs.Int("n", 0, "")
	decimalIntFlagsOf(fs)
	for in, want := range map[string]int{"010": 10, "+007": 7, "-0012": -12, "0": 0, "000": 0} {
		if err := fs.Set("n", in); err != nil || *n != want {
			t.Errorf("--n %s: %d, %v; want %d", in, *n, err, want)
		}
	}
}

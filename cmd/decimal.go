package cmd

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echoctl/echoctl/pkg/echo"
)

// decimalIntFlags makes every integer flag of cmd and its subcommands take
// decimal only, as the environment and the config file do: pflag's own
// parser also reads 0x10, 0b11, 1_0 and 010 (octal, so --count 010 made 8
// exchanges). It also makes every duration flag show its value as users
// write it (shortDurationValue).
func decimalIntFlags(cmd *cobra.Command) {
	decimalIntFlagsOf(cmd.Flags())
	decimalIntFlagsOf(cmd.PersistentFlags())
	for _, sub := range cmd.Commands() {
		decimalIntFlags(sub)
	}
}

// decimalIntFlagsOf makes the integer flags of fs decimalValues, and its
// duration flags shortDurationValues.
func decimalIntFlagsOf(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		switch f.Value.Type() {
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			if _, done := f.Value.(decimalValue); !done {
				f.Value = decimalValue{f.Value}
			}
		case "duration":
			if _, done := f.Value.(shortDurationValue); !done {
				f.Value = shortDurationValue{f.Value}
				f.DefValue = shortDuration(f.DefValue)
			}
		}
	})
}

// shortDurationValue is a duration flag that shows its value as users
// write it (echo.FormatDuration): --help's "(default 1m)", and "1h" in an
// error about --idle-timeout 1h, not pflag's 1m0s and 1h0m0s.
type shortDurationValue struct{ pflag.Value }

func (v shortDurationValue) String() string { return shortDuration(v.Value.String()) }

// shortDuration rewrites s, a duration as time.Duration's String writes
// it, as echo.FormatDuration does, and zero as 0 (a default that --help
// leaves out, as pflag's own duration flags do); anything else as it is.
func shortDuration(s string) string {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil || d.String() != s:
		return s
	case d == 0:
		return "0"
	}
	return echo.FormatDuration(d)
}

// decimalValue is an integer flag that takes a decimal number only, with
// an optional sign; leading zeros are decimal too (010 is ten).
type decimalValue struct{ pflag.Value }

func (v decimalValue) Set(s string) error {
	sign, digits := "", s
	if s != "" && (s[0] == '-' || s[0] == '+') {
		sign, digits = s[:1], s[1:]
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return fmt.Errorf("%q is not a decimal integer", s)
	}
	if digits = strings.TrimLeft(digits, "0"); digits == "" {
		digits = "0"
	}
	return v.Value.Set(sign + digits)
}

package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// decimalIntFlags makes every integer flag of cmd and its subcommands take
// decimal only, as the environment and the config file do: pflag's own
// parser also reads 0x10, 0b11, 1_0 and 010 (octal, so --count 010 made 8
// exchanges).
func decimalIntFlags(cmd *cobra.Command) {
	decimalIntFlagsOf(cmd.Flags())
	decimalIntFlagsOf(cmd.PersistentFlags())
	for _, sub := range cmd.Commands() {
		decimalIntFlags(sub)
	}
}

// decimalIntFlagsOf makes the integer flags of fs decimalValues.
func decimalIntFlagsOf(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		switch f.Value.Type() {
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			if _, done := f.Value.(decimalValue); !done {
				f.Value = decimalValue{f.Value}
			}
		}
	})
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

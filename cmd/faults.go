package cmd

import (
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

// serve's faults (docs/faults.md): each key is "fault-" and a key of
// echo.Faults' text form, parsed by echo.Faults.Set, the one parser of a
// fault setting; in a config file they may also sit in a faults section
// without the prefix (faults: {delay: 50ms}).
const (
	faultPrefix  = "fault-"
	faultSection = "faults"
)

// faultKey is the key of the fault named name (a key of echo.Faults' text
// form), a string flag of serve, empty (off) by default.
func faultKey(name, def, usage string) key {
	return key{
		name: faultPrefix + name, def: def,
		flags: []keyFlag{{on: cmdServe, usage: "fault: " + usage}},
		decode: func(d *decoder, key string, cfg *Config) {
			if cfg.Faults == nil {
				cfg.Faults = &echo.Faults{}
			}
			raw := d.v.Get(key)
			if err := cfg.Faults.Set(name, faultText(raw)); err != nil {
				_, reason, _ := strings.Cut(err.Error(), name+": ")
				d.fail(key, raw, reason)
			}
		},
	}
}

// faultText is the text of a merged value: a string as it is, a number
// (a config file's corrupt: 0.01 or close-after: 1024) written out.
func faultText(raw any) string {
	switch x := raw.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	return "?"
}

// logFaults writes one line listing the faults serve injects, if any.
func logFaults(f *echo.Faults, logger zerolog.Logger) {
	settings := f.Settings()
	if settings == nil {
		return
	}
	logger.Info().Str("logger", "main").Strs("faults", settings).
		Msg("faults on every tcp, tls and unix listener: " + strings.Join(settings, " "))
}

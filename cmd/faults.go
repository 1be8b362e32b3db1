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
	faultPrefix  = echo.FaultKeyPrefix
	faultSection = "faults"
)

// faultKey is the key of the fault named name (a key of echo.Faults' text
// form), a string flag of serve, empty (off) by default, with the usage
// of its per-listener key (echo.ListenerKeys).
func faultKey(name, def, usage string) key {
	return key{
		name: faultPrefix + name, def: def,
		flags: []keyFlag{{on: cmdServe, usage: usage}},
		decode: func(d *decoder, key string, cfg *Config) {
			if cfg.Faults == nil {
				cfg.Faults = &echo.Faults{}
			}
			raw := d.v.Get(key)
			text, ok := faultText(raw)
			if !ok {
				d.fail(key, raw, "must be one value, not a list or a table")
				return
			}
			if err := cfg.Faults.Set(name, text); err != nil {
				_, reason, _ := strings.Cut(err.Error(), name+": ")
				d.fail(key, raw, reason)
			}
		},
	}
}

// faultText is the text of a merged value: a string as it is, a number
// (a config file's corrupt: 0.01 or close-after: 1024) written out; false
// for anything else (a list, a table).
func faultText(raw any) (string, bool) {
	switch x := raw.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case nil:
		return "", true
	}
	return "", false
}

// logFaults writes one line listing the faults serve injects, if any.
func logFaults(f *echo.Faults, logger zerolog.Logger) {
	settings := f.Settings()
	if settings == nil {
		return
	}
	logger.Info().Str("logger", "main").Strs("faults", settings).
		Msg("faults on every listener: " + strings.Join(settings, " "))
}

// watchFaults reloads serve's faults on SIGHUP, when it read a config
// file: the configuration is loaded again (flags and the environment
// still win over the file) and its faults apply to the connections opened
// from then on. A configuration that does not load, or faults that are
// not valid, leave the faults in force, and the log says why.
func watchFaults(srv *echo.Server, cfg *Config, reload func() (*Config, error), logger zerolog.Logger) (stop func()) {
	if cfg.File == "" || srv.Faults == nil || reload == nil {
		return func() {}
	}
	current := cfg.Faults
	return onSIGHUP(func() {
		next, err := reload()
		if err == nil {
			err = srv.SetFaults(next.Faults)
		}
		if err != nil {
			logger.Warn().Str("logger", "main").Err(err).
				Msgf("SIGHUP: faults not reloaded, still %s: %v", faultList(current), err)
			return
		}
		current = next.Faults
		logger.Info().Str("logger", "main").Strs("faults", current.Settings()).
			Msg("SIGHUP: faults reloaded, for new connections: " + faultList(current))
		if changed := restartKeys(cfg, next); changed != nil {
			logger.Warn().Str("logger", "main").Strs("keys", changed).
				Msgf("SIGHUP: %s changed, which only a restart applies: still as started", strings.Join(changed, ", "))
		}
	})
}

// restartKeys lists the keys whose values differ between the
// configuration serve started with and next, loaded again on SIGHUP, but
// for the faults, which a SIGHUP applies: addresses, limits, the access
// list, TLS file paths (their contents reload, tls.go) and the rest keep
// their first values, and the log must say so rather than let an edited
// deny: look applied.
func restartKeys(started, next *Config) []string {
	var changed []string
	for _, k := range keys {
		if !strings.HasPrefix(k.name, faultPrefix) && started.values[k.name] != next.values[k.name] {
			changed = append(changed, k.name)
		}
	}
	return changed
}

// faultList is f's settings in one line, or "none".
func faultList(f *echo.Faults) string {
	if s := f.Settings(); s != nil {
		return strings.Join(s, " ")
	}
	return "none"
}

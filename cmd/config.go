package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/echoctl/echoctl/internal/logging"
	"github.com/echoctl/echoctl/pkg/echo"
)

// envPrefix prefixes every environment variable echoctl reads.
const envPrefix = "ECHOCTL"

// envNotKeys are the ECHOCTL_* variables that are not keys and are not
// warned about: the config file's, and those of the soak test
// (internal/reliability, `make soak`), which a shell that ran it may still
// export; the soak test's are never suggested.
var envNotKeys = []string{envPrefix + "_CONFIG", envPrefix + "_SOAK", envPrefix + "_SOAK_DURATION"}

// Config is the validated configuration, merged from flags, environment,
// config file and defaults, in that order of precedence.
type Config struct {
	// Addr is the address send connects to: the first of Addrs.
	Addr string
	// Addrs are the addresses serve listens on (addr may be a list for
	// serve); send has exactly one.
	Addrs           []string
	BufferSize      int
	Messages        []string
	LogLevel        zerolog.Level
	LogFormat       string
	ShutdownTimeout time.Duration
	Timeout         time.Duration
	// LogMaxBytes is the most bytes of data a log line shows, in
	// echo.Server's convention: -1 for no limit (log-max-bytes 0).
	LogMaxBytes int
	// serve's limits, timeouts and access list (0 and nil: off), and the
	// address of its metrics server ("": off).
	MaxConns      int
	MaxConnsPerIP int
	IdleTimeout   time.Duration
	WriteTimeout  time.Duration
	// BusyPoll is how long serve's event loops poll after each event
	// before they sleep (0: off); see echo.Server.BusyPoll.
	BusyPoll    time.Duration
	Allow, Deny []netip.Prefix
	MetricsAddr string
	// Greeting is serve's greeting template ("": off); see
	// echo.Server.Greeting.
	Greeting string
	// Transport holds the TLS, Unix socket and UDP settings (transport.go).
	Transport TransportConfig
	// Listener holds serve's per-listener options (listenerKeys): the
	// default of every address, which its query may override.
	Listener echo.ListenerOptions
	// Faults are serve's fault-* keys (faults.go); zero: none.
	Faults *echo.Faults
	// File is the config file that was read, or "" if none.
	File string
	// Warnings are about the configuration (ECHOCTL_* variables that
	// echoctl does not read), one line each, to log once a logger exists.
	Warnings []string
	// source says where a key's value came from ("flag --timeout",
	// "environment ECHOCTL_TIMEOUT", ...), for a command's own checks.
	source func(key string) string
	// values are the keys' merged values, as text, to tell which changed
	// when serve loads its configuration again (SIGHUP).
	values map[string]string
}

// envName returns the environment variable for key.
func envName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// configSearchPath lists, in order, the config files tried when --config is
// not given: the first one that exists is read.
func configSearchPath() []string {
	var dirs []string
	dirs = append(dirs, filepath.Join(".", "echoctl"))
	if xdg := os.Getenv("XDG_CONFIG_HOME"); xdg != "" {
		dirs = append(dirs, filepath.Join(xdg, "echoctl", "config"))
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".config", "echoctl", "config"))
	}
	dirs = append(dirs, filepath.Join("/etc", "echoctl", "config"))
	var paths []string
	for _, base := range dirs {
		for _, ext := range []string{".yaml", ".yml", ".toml", ".json"} {
			paths = append(paths, base+ext)
		}
	}
	return paths
}

// findConfigFile returns the file named by --config or ECHOCTL_CONFIG,
// which must exist, else the first file of configSearchPath that exists,
// else "". A path of the search that is a symbolic link to nothing is an
// error, not a file to pass over for the next one; one that cannot be
// checked at all (under a directory the user cannot enter, as the working
// directory of a command run as another user may be) counts as absent.
func findConfigFile(explicit string) (string, error) {
	if explicit == "" {
		explicit = os.Getenv(envPrefix + "_CONFIG")
	}
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("config file %s: %w", explicit, errors.Unwrap(err))
		}
		return explicit, nil
	}
	for _, p := range configSearchPath() {
		fi, err := os.Lstat(p)
		if err != nil {
			continue // absent, or a directory of the search one cannot enter
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("config file %s: a symbolic link to a file that cannot be read: %w", p, errors.Unwrap(err))
			}
		}
		return p, nil
	}
	return "", nil
}

// loadConfig merges flags (only those set on the command line), ECHOCTL_*
// environment variables, the config file and the defaults, and validates
// every key. Errors name the key, the value and where it came from.
func loadConfig(flags *pflag.FlagSet, configPath string) (*Config, error) {
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	for _, k := range keys {
		v.SetDefault(k.name, k.def)
		if f := flags.Lookup(k.name); f != nil && isKeyFlag(f) {
			if err := v.BindPFlag(k.name, f); err != nil {
				return nil, fmt.Errorf("bind flag --%s: %w", k.name, err)
			}
		}
	}

	file, err := findConfigFile(configPath)
	if err != nil {
		return nil, err
	}
	fileKeys := map[string]bool{}
	if file != "" {
		fv, err := readConfigFile(file)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %s", file, oneLine(err.Error()))
		}
		settings := fv.AllSettings()
		var unknown []string
		for _, key := range slices.Sorted(slices.Values(fv.AllKeys())) {
			top, sub, _ := strings.Cut(key, ".")
			if top == faultSection {
				// faults: {delay: 50ms} is fault-delay: 50ms (faults.go).
				switch top = faultPrefix + sub; {
				case sub == "" || strings.Contains(sub, "."):
					return nil, fmt.Errorf("config file %s: faults must be a table of fault keys and values, such as faults: {delay: 50ms} (fault keys: %s)", file, strings.Join(echo.FaultKeys(), ", "))
				case !slices.Contains(knownKeys, top):
					return nil, fmt.Errorf("config file %s: unknown key %q in the faults section (fault keys: %s)", file, sub, strings.Join(echo.FaultKeys(), ", "))
				case fv.InConfig(top):
					return nil, fmt.Errorf("config file %s: %s is set twice, in the faults section and as %s", file, sub, top)
				}
				settings[top], key = fv.Get(key), top
			}
			switch {
			case !slices.Contains(knownKeys, top):
				if !slices.Contains(unknown, top) {
					unknown = append(unknown, top)
				}
				continue
			case top != key:
				return nil, fmt.Errorf("invalid %s %s from config file %s: must be a value, not a table of keys (%s)", top, quoteValue(fv.Get(top)), file, key)
			}
			fileKeys[key] = true
		}
		if len(unknown) > 0 {
			what := "key"
			if len(unknown) > 1 {
				what = "keys"
			}
			for i, k := range unknown {
				unknown[i] = strconv.Quote(k)
			}
			return nil, fmt.Errorf("config file %s: unknown %s %s (known keys: %s)", file, what, strings.Join(unknown, ", "), strings.Join(knownKeys, ", "))
		}
		delete(settings, faultSection)
		if err := v.MergeConfigMap(settings); err != nil {
			return nil, fmt.Errorf("config file %s: %w", file, err)
		}
	}

	d := decoder{v: v, flags: flags, file: file, fileKeys: fileKeys}
	cfg := &Config{File: file, Warnings: unknownEnvWarnings(os.Environ(), flags)}
	for _, k := range keys {
		k.decode(&d, k.name, cfg)
	}
	d.checkProxyGiven(cfg)
	// A key with flags is for the commands that have one (the keys
	// table): a shared config file's buffer-size or proxy-protocol is
	// not ping's. Validated above all the same, a key this command does
	// not take is decoded again from its default.
	d.defaulted = map[string]bool{}
	for _, k := range keys {
		if f := flags.Lookup(k.name); len(k.flags) > 0 && (f == nil || !isKeyFlag(f)) {
			v.Set(k.name, k.def)
			d.defaulted[k.name] = true
			k.decode(&d, k.name, cfg)
		}
	}
	d.checkTransport(cfg)
	if d.err != nil {
		return nil, d.err
	}
	cfg.source = d.source
	cfg.values = make(map[string]string, len(keys))
	for _, k := range keys {
		cfg.values[k.name] = fmt.Sprint(v.Get(k.name))
	}
	return cfg, nil
}

// unknownEnvWarnings returns a warning for each ECHOCTL_* variable of
// environ (as os.Environ gives it) that echoctl does not read, in the
// order of their names: a misspelt key is ignored without it, while an
// unknown key in a config file is an error (a file is read on purpose; the
// environment may hold variables meant for another version or program).
// The warning names the closest variable echoctl reads, if one is close,
// or says that a variable named after one of flags is a flag only. An
// empty variable counts as unset, as for the keys.
func unknownEnvWarnings(environ []string, flags *pflag.FlagSet) []string {
	known := []string{envPrefix + "_CONFIG"}
	for _, k := range knownKeys {
		known = append(known, envName(k))
	}
	var names []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" || !strings.HasPrefix(name, envPrefix+"_") || slices.Contains(known, name) || slices.Contains(envNotKeys, name) {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var warnings []string
	for _, name := range names {
		w := "environment variable " + name + " is not one echoctl reads: ignored"
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix+"_"), "_", "-"))
		if f := flags.Lookup(flag); f != nil && !slices.Contains(knownKeys, flag) {
			w += fmt.Sprintf("; --%s is a flag only", flag)
		} else if closest := closestName(strings.ToUpper(name), known, envPrefix+"_"); closest != "" {
			w += "; did you mean " + closest + "?"
		}
		warnings = append(warnings, w)
	}
	return warnings
}

// closestName returns the name of names nearest to s in edit distance,
// compared without their common prefix, if it is close enough to be a
// likely misspelling: at most a third of the rest of s away (at least 2);
// else "".
func closestName(s string, names []string, prefix string) string {
	s = strings.TrimPrefix(s, prefix)
	best, bestDist := "", max(2, len(s)/3)+1
	for _, n := range names {
		if d := editDistance(s, strings.TrimPrefix(n, prefix)); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b: the fewest
// single-byte insertions, deletions and substitutions that turn one into
// the other.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// oneLine joins a multi-line parser message into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// decoder converts the merged values to their types, keeping the first
// error, which names the key, the value and its source.
type decoder struct {
	v        *viper.Viper
	flags    *pflag.FlagSet
	file     string
	fileKeys map[string]bool
	// defaulted are the keys this command does not take, decoded again
	// from their defaults once checked: their source is the default.
	defaulted map[string]bool
	err       error
}

// source says where the value of key came from.
func (d *decoder) source(key string) string {
	if d.defaulted[key] {
		return "default"
	}
	if f := d.flags.Lookup(key); f != nil && f.Changed {
		return "flag --" + key
	}
	if v, ok := os.LookupEnv(envName(key)); ok && v != "" {
		return "environment " + envName(key)
	}
	if d.fileKeys[key] {
		return "config file " + d.file
	}
	return "default"
}

func (d *decoder) fail(key string, value any, reason string) {
	if d.err == nil {
		d.err = fmt.Errorf("invalid %s %s from %s: %s", key, quoteValue(value), d.source(key), reason)
	}
}

// quoteValue shows a value in an error: a string quoted, anything else as
// JSON; a long one cut after its first quotedMax bytes, so that a 100 KB
// greeting template is not a 100 KB error line.
func quoteValue(value any) string {
	s, ok := value.(string)
	if !ok {
		b, err := json.Marshal(value)
		if err != nil {
			return fmt.Sprint(value)
		}
		if len(b) <= quotedMax {
			return string(b)
		}
		return fmt.Sprintf("%s... (%d more bytes)", b[:quotedMax], len(b)-quotedMax)
	}
	if len(s) <= quotedMax {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d more bytes)", strconv.Quote(s[:quotedMax]), len(s)-quotedMax)
}

// quotedMax is the most bytes of a value an error shows.
const quotedMax = 200

func (d *decoder) intRange(key string, lo, hi int) int {
	raw := d.v.Get(key)
	var n int64
	var err error
	switch x := raw.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		n = int64(x)
	case float64:
		n = int64(x)
		if float64(n) != x {
			err = errors.New("not an integer")
		}
	case string:
		n, err = strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	default:
		err = errors.New("not an integer")
	}
	if err != nil || n < int64(lo) || n > int64(hi) {
		d.fail(key, raw, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return 0
	}
	return int(n)
}

func (d *decoder) duration(key string) time.Duration {
	raw := d.v.Get(key)
	dur, ok := parseDuration(raw)
	if !ok {
		d.fail(key, raw, zeroOrMoreReason("no limit"))
	}
	return dur
}

// connTimeout decodes idle-timeout, write-timeout and the clients'
// timeout: a duration, at most echo.MaxTimeout, beyond which the server's
// deadline arithmetic would overflow and close every connection at once
// (and which bounds every other duration, ping's timeout among them).
func (d *decoder) connTimeout(key string) time.Duration {
	dur := d.duration(key)
	if dur > echo.MaxTimeout {
		zero := " (0 for no limit)"
		if key == keyTimeout {
			zero = "" // ping's must be more than 0
		}
		d.fail(key, d.v.Get(key), fmt.Sprintf("must be at most %dh%s", echo.MaxTimeout/time.Hour, zero))
		return 0
	}
	return dur
}

// zeroOrMoreReason is the reason given for a duration that does not parse
// or is negative, where 0 is allowed and means zero; keys where 0 is not
// allowed say "positive". bench.Config.Validate says the same of --warmup.
func zeroOrMoreReason(zero string) string {
	return "must be a duration of 0 or more, such as 500ms, 10s or 1m (0 for " + zero + ")"
}

// busyPoll decodes busy-poll: a duration from 0 (off) to echo.MaxBusyPoll.
func (d *decoder) busyPoll(key string) time.Duration {
	raw := d.v.Get(key)
	dur, ok := parseDuration(raw)
	if !ok || dur > echo.MaxBusyPoll {
		d.fail(key, raw, fmt.Sprintf("must be a duration from 0 (off) to %v, such as 50us or 200us", echo.MaxBusyPoll))
		return 0
	}
	return dur
}

// parseDuration converts a merged value to a duration that is not
// negative; ok is false if it is not one. A bare number is only accepted
// as 0, the one value that needs no unit.
func parseDuration(raw any) (dur time.Duration, ok bool) {
	switch x := raw.(type) {
	case time.Duration:
		dur = x
	case int, int64, uint64, float64:
		if fmt.Sprint(x) != "0" {
			return 0, false
		}
	case string:
		var err error
		if dur, err = time.ParseDuration(strings.TrimSpace(x)); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if dur < 0 {
		return 0, false
	}
	return dur, true
}

func (d *decoder) str(key string) (string, bool) {
	raw := d.v.Get(key)
	s, ok := raw.(string)
	if !ok {
		d.fail(key, raw, "must be a string")
	}
	return s, ok
}

func (d *decoder) oneOf(key string, allowed []string) string {
	s, ok := d.str(key)
	if ok && !slices.Contains(allowed, s) {
		d.fail(key, s, "must be one of "+strings.Join(allowed, ", "))
	}
	return s
}

func (d *decoder) level(key string) zerolog.Level {
	s, ok := d.str(key)
	if !ok {
		return zerolog.InfoLevel
	}
	lvl, err := logging.ParseLevel(s)
	if err != nil {
		d.fail(key, s, "must be one of "+strings.Join(logging.Levels, ", "))
	}
	return lvl
}

// strings decodes a list of strings. From the environment, a value that
// starts with "[" is a JSON array of strings; any other value is one string.
func (d *decoder) strings(key string) []string {
	raw := d.v.Get(key)
	switch x := raw.(type) {
	case []string:
		return x
	case string:
		if !strings.HasPrefix(strings.TrimSpace(x), "[") {
			return []string{x}
		}
		list, ok := jsonStrings(x)
		if !ok {
			d.fail(key, raw, "must be a JSON array of strings, such as [\"one\", \"two\"]")
		}
		return list
	case []any:
		list, ok := stringItems(x)
		if !ok {
			d.fail(key, raw, "must be a list of strings (quote numbers and booleans)")
		}
		return list
	}
	d.fail(key, raw, "must be a list of strings")
	return nil
}

// jsonStrings parses s, a JSON array of strings written in an
// environment variable or a flag; false if it is not one, or an item is
// not a string (null included: it would read as "").
func jsonStrings(s string) ([]string, bool) {
	var items []any
	if err := json.Unmarshal([]byte(s), &items); err != nil {
		return nil, false
	}
	return stringItems(items)
}

// stringItems returns the items of a list read from a config file, or
// false if one of them is not a string.
func stringItems(items []any) ([]string, bool) {
	list := make([]string, 0, len(items))
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, false
		}
		list = append(list, s)
	}
	return list, true
}

package cmd

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustPrefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// TestLoadLimits reads serve's limit keys from each source: flags, the
// environment and config files in each format.
func TestLoadLimits(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string // name, in a temporary directory
		content string
		check   func(*Config) error
	}{
		{name: "defaults are off", args: []string{"serve"}, check: func(c *Config) error {
			if c.MaxConns != 0 || c.MaxConnsPerIP != 0 || c.IdleTimeout != 0 || c.WriteTimeout != 0 || c.BusyPoll != 0 ||
				c.Allow != nil || c.Deny != nil || c.MetricsAddr != "" || c.LogMaxBytes != 256 {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
		{name: "flags", args: []string{"serve", "--max-conns", "100", "--max-conns-per-ip", "10",
			"--idle-timeout", "30s", "--write-timeout", "5s", "--allow", "10.0.0.0/8,192.0.2.7", "--allow", "::1",
			"--deny", "10.9.0.0/16", "--metrics-addr", "127.0.0.1:9100", "--log-max-bytes", "64", "--busy-poll", "200us"},
			check: func(c *Config) error {
				want := Config{MaxConns: 100, MaxConnsPerIP: 10, IdleTimeout: 30 * time.Second, WriteTimeout: 5 * time.Second,
					Allow: mustPrefixes("10.0.0.0/8", "192.0.2.7/32", "::1/128"), Deny: mustPrefixes("10.9.0.0/16"),
					MetricsAddr: "127.0.0.1:9100", LogMaxBytes: 64, BusyPoll: 200 * time.Microsecond}
				return compareLimits(c, &want)
			}},
		{name: "environment", args: []string{"serve"}, env: map[string]string{
			"ECHOCTL_MAX_CONNS": "7", "ECHOCTL_MAX_CONNS_PER_IP": "3", "ECHOCTL_IDLE_TIMEOUT": "1m",
			"ECHOCTL_WRITE_TIMEOUT": "250ms", "ECHOCTL_ALLOW": "10.0.0.0/8, 2001:db8::/32", "ECHOCTL_DENY": `["10.0.0.1"]`,
			"ECHOCTL_METRICS_ADDR": ":9100", "ECHOCTL_LOG_MAX_BYTES": "0", "ECHOCTL_BUSY_POLL": "100ms"},
			check: func(c *Config) error {
				want := Config{MaxConns: 7, MaxConnsPerIP: 3, IdleTimeout: time.Minute, WriteTimeout: 250 * time.Millisecond,
					Allow: mustPrefixes("10.0.0.0/8", "2001:db8::/32"), Deny: mustPrefixes("10.0.0.1/32"),
					MetricsAddr: ":9100", LogMaxBytes: -1, BusyPoll: 100 * time.Millisecond}
				return compareLimits(c, &want)
			}},
		{name: "yaml file", args: []string{"serve"}, file: "c.yaml", content: `
max-conns: 1000
max-conns-per-ip: 20
idle-timeout: 5m
write-timeout: 10s
allow:
  - 10.0.0.0/8
  - 192.0.2.7
deny: [10.1.0.0/16]
metrics-addr: "localhost:9100"
log-max-bytes: 1024
busy-poll: 50us
`, check: func(c *Config) error {
			want := Config{MaxConns: 1000, MaxConnsPerIP: 20, IdleTimeout: 5 * time.Minute, WriteTimeout: 10 * time.Second,
				Allow: mustPrefixes("10.0.0.0/8", "192.0.2.7/32"), Deny: mustPrefixes("10.1.0.0/16"),
				MetricsAddr: "localhost:9100", LogMaxBytes: 1024, BusyPoll: 50 * time.Microsecond}
			return compareLimits(c, &want)
		}},
		{name: "toml file", args: []string{"serve"}, file: "c.toml", content: `
max-conns = 5
allow = "10.0.0.0/8"
deny = ["::1", "127.0.0.0/8"]
`, check: func(c *Config) error {
			want := Config{MaxConns: 5, Allow: mustPrefixes("10.0.0.0/8"), Deny: mustPrefixes("::1/128", "127.0.0.0/8"), LogMaxBytes: 256}
			return compareLimits(c, &want)
		}},
		{name: "json file", args: []string{"serve"}, file: "c.json", content: `{"idle-timeout": "2s", "deny": [], "log-max-bytes": 16}`,
			check: func(c *Config) error {
				return compareLimits(c, &Config{IdleTimeout: 2 * time.Second, LogMaxBytes: 16})
			}},
		{name: "flag beats environment", args: []string{"serve", "--max-conns", "9", "--allow", "192.0.2.0/24"},
			env: map[string]string{"ECHOCTL_MAX_CONNS": "1", "ECHOCTL_ALLOW": "10.0.0.0/8"},
			check: func(c *Config) error {
				return compareLimits(c, &Config{MaxConns: 9, Allow: mustPrefixes("192.0.2.0/24"), LogMaxBytes: 256})
			}},
		{name: "send has log-max-bytes", args: []string{"send", "--log-max-bytes", "3"}, check: func(c *Config) error {
			if c.LogMaxBytes != 3 {
				return fmt.Errorf("LogMaxBytes = %d", c.LogMaxBytes)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			args := tt.args
			if tt.file != "" {
				args = append(slices.Clone(args), "--config", writeFile(t, filepath.Join(dir, tt.file), tt.content))
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg := mustLoad(t, args...)
			if err := tt.check(cfg); err != nil {
				t.Error(err)
			}
		})
	}
}

// compareLimits compares the fields of issue 6's keys.
func compareLimits(got, want *Config) error {
	pick := func(c *Config) Config {
		return Config{MaxConns: c.MaxConns, MaxConnsPerIP: c.MaxConnsPerIP, IdleTimeout: c.IdleTimeout,
			WriteTimeout: c.WriteTimeout, BusyPoll: c.BusyPoll, Allow: c.Allow, Deny: c.Deny, MetricsAddr: c.MetricsAddr, LogMaxBytes: c.LogMaxBytes}
	}
	if g, w := pick(got), pick(want); !reflect.DeepEqual(g, w) {
		return fmt.Errorf("got  %+v\nwant %+v", g, w)
	}
	return nil
}

// TestRunInvalidLimits: an invalid value of any of issue 6's keys exits 2
// naming the key, the value and where it came from.
func TestRunInvalidLimits(t *testing.T) {
	const (
		connsReason   = "must be an integer from 0 to 2147483647"
		durReason     = "must be a duration of 0 or more, such as 500ms, 10s or 1m (0 for no limit)"
		logBytes      = "must be an integer from 0 to 16777216"
		busyReason    = "must be a duration from 0 (off) to 100ms, such as 50us or 200us"
		metricsReason = "must be host:port with a port from 0 to 65535, such as localhost:9100 or :9100 (empty: off)"
		listReason    = "must be a list of IP addresses or CIDR prefixes, such as [10.0.0.0/8, 192.0.2.7]"
	)
	prefixReason := func(s string) string {
		return fmt.Sprintf("%q is not an IP address or a CIDR prefix such as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7", s)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		content string
		want    string // %[1]s is the config file
	}{
		{name: "max-conns negative flag", args: []string{"serve", "--max-conns=-1"},
			want: "invalid max-conns -1 from flag --max-conns: " + connsReason},
		{name: "max-conns word env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_MAX_CONNS": "many"},
			want: `invalid max-conns "many" from environment ECHOCTL_MAX_CONNS: ` + connsReason},
		{name: "max-conns-per-ip float file", args: []string{"serve"}, file: "c.yaml", content: "max-conns-per-ip: 1.5\n",
			want: "invalid max-conns-per-ip 1.5 from config file %[1]s: " + connsReason},
		{name: "idle-timeout bare number env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_IDLE_TIMEOUT": "30"},
			want: `invalid idle-timeout "30" from environment ECHOCTL_IDLE_TIMEOUT: ` + durReason},
		{name: "write-timeout negative flag", args: []string{"serve", "--write-timeout=-1s"},
			want: `invalid write-timeout "-1s" from flag --write-timeout: ` + durReason},
		{name: "busy-poll negative flag", args: []string{"serve", "--busy-poll=-1us"},
			want: `invalid busy-poll "-1µs" from flag --busy-poll: ` + busyReason},
		{name: "busy-poll too long env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_BUSY_POLL": "101ms"},
			want: `invalid busy-poll "101ms" from environment ECHOCTL_BUSY_POLL: ` + busyReason},
		{name: "busy-poll bare number file", args: []string{"serve"}, file: "c.yaml", content: "busy-poll: 200\n",
			want: "invalid busy-poll 200 from config file %[1]s: " + busyReason},
		{name: "allow host name flag", args: []string{"serve", "--allow", "10.0.0.0/8,localhost"},
			want: `invalid allow ["10.0.0.0/8","localhost"] from flag --allow: ` + prefixReason("localhost")},
		{name: "deny bad bits env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_DENY": "10.0.0.0/33"},
			want: `invalid deny "10.0.0.0/33" from environment ECHOCTL_DENY: ` + prefixReason("10.0.0.0/33")},
		{name: "allow number in file", args: []string{"serve"}, file: "c.yaml", content: "allow: [10]\n",
			want: "invalid allow [10] from config file %[1]s: " + listReason},
		// A list that reads as empty would serve every peer: never guessed.
		{name: "allow open bracket env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_ALLOW": "["},
			want: `invalid allow "[" from environment ECHOCTL_ALLOW: starts with [ but is not a JSON array of strings: ` + listReason},
		{name: "allow stray bracket env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_ALLOW": "]"},
			want: `invalid allow "]" from environment ECHOCTL_ALLOW: ` + prefixReason("]")},
		{name: "allow comma in brackets env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_ALLOW": "[,]"},
			want: `invalid allow "[,]" from environment ECHOCTL_ALLOW: starts with [ but is not a JSON array of strings: ` + listReason},
		{name: "allow empty strings env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_ALLOW": `["", ""]`},
			want: `invalid allow "[\"\", \"\"]" from environment ECHOCTL_ALLOW: an item is empty: ` + listReason},
		{name: "deny truncated JSON env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_DENY": `["127.0.0.1"`},
			want: `invalid deny "[\"127.0.0.1\"" from environment ECHOCTL_DENY: starts with [ but is not a JSON array of strings: ` + listReason},
		{name: "deny stray comma env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_DENY": "10.0.0.0/8,,::1"},
			want: `invalid deny "10.0.0.0/8,,::1" from environment ECHOCTL_DENY: an item is empty (a stray comma?): ` + listReason},
		{name: "deny open bracket file", args: []string{"serve"}, file: "c.yaml", content: "deny: \"[\"\n",
			want: `invalid deny "[" from config file %[1]s: starts with [ but is not a JSON array of strings: ` + listReason},
		{name: "allow comma flag", args: []string{"serve", "--allow", ","},
			want: `invalid allow ["",""] from flag --allow: an item is empty (a stray comma?): ` + listReason},
		{name: "allow brackets flag", args: []string{"serve", "--allow", "[10.0.0.1]"},
			want: `invalid allow ["[10.0.0.1]"] from flag --allow: ` + prefixReason("[10.0.0.1]")},
		{name: "deny bracket flag", args: []string{"serve", "--deny", "]"},
			want: `invalid deny ["]"] from flag --deny: ` + prefixReason("]")},
		{name: "allow empty list file", args: []string{"serve"}, file: "c.yaml", content: "allow: []\n",
			want: "invalid allow [] from config file %[1]s: names no address, and an empty allow list would serve every peer: name the peers to serve, or leave allow unset to serve all"},
		{name: "metrics-addr no port", args: []string{"serve", "--metrics-addr", "localhost"},
			want: `invalid metrics-addr "localhost" from flag --metrics-addr: ` + metricsReason},
		{name: "metrics-addr with a scheme", args: []string{"serve", "--metrics-addr", "udp://127.0.0.1:9100"},
			want: `invalid metrics-addr "udp://127.0.0.1:9100" from flag --metrics-addr: ` + metricsReason},
		{name: "log-max-bytes negative env", args: []string{"send"}, env: map[string]string{"ECHOCTL_LOG_MAX_BYTES": "-5"},
			want: `invalid log-max-bytes "-5" from environment ECHOCTL_LOG_MAX_BYTES: ` + logBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			args := tt.args
			var path string
			if tt.file != "" {
				path = writeFile(t, filepath.Join(dir, tt.file), tt.content)
				args = append(slices.Clone(args), "--config", path)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			want := tt.want
			if path != "" {
				want = fmt.Sprintf(tt.want, path)
			}
			if _, err := loadFor(t, args...); err == nil || err.Error() != want {
				t.Errorf("loadConfig error:\n got %v\nwant %s", err, want)
			}
			r := run(t, cancelledContext(), args...)
			if r.code != ExitUsage || r.stderr != "echoctl: "+want+"\n" {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, ExitUsage, "echoctl: "+want+"\n")
			}
		})
	}
}

// TestServeMetricsAddrInUse: a metrics address that cannot be listened on
// is a runtime error, exit 1, before anything is served.
func TestServeMetricsAddrInUse(t *testing.T) {
	isolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	r := run(t, t.Context(), "serve", "--addr", "127.0.0.1:0", "--metrics-addr", addr)
	if r.code != ExitNetwork || !strings.Contains(r.stderr, "metrics: listen "+addr) {
		t.Errorf("exit %d, stderr %q; want 1 and a metrics listen error", r.code, r.stderr)
	}
}

// FuzzLoadConfig feeds arbitrary YAML config files to loadConfig for each
// command: it must never panic, and must either return a Config or an
// error that says which file or key is wrong.
func FuzzLoadConfig(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "config", "*.yaml"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("addr: localhost:10000\nbuffer-size: 128\n")
	f.Add("allow: [10.0.0.0/8, 192.0.2.7]\ndeny: 10.1.0.0/16\nmax-conns: 5\nidle-timeout: 1s\n")
	f.Add("messages: [1, true, null]\n")
	f.Add("log-max-bytes: 1e9\nwrite-timeout: -1s\n")
	f.Add("metrics-addr: {a: b}\n")
	f.Add("addr: [\n")
	f.Add("? [a]\n: b\n")

	dir := f.TempDir()
	// No ECHOCTL_* variable may leak into the results.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix+"_") {
			f.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	path := filepath.Join(dir, "config.yaml")
	f.Fuzz(func(t *testing.T, content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, command := range []string{"serve", "send"} {
			root := newRootCmd(Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
			c, _, err := root.Find([]string{command})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(c.Flags(), path)
			switch {
			case err == nil && cfg == nil:
				t.Fatalf("%s: loadConfig returned neither a Config nor an error", command)
			case err != nil && cfg != nil:
				t.Fatalf("%s: loadConfig returned a Config and the error %v", command, err)
			case err != nil && !strings.HasPrefix(err.Error(), "config file ") && !strings.HasPrefix(err.Error(), "invalid "):
				t.Fatalf("%s: error %q names neither the file nor a key", command, err)
			case err == nil && cfg.File != path:
				t.Fatalf("%s: Config.File = %q, want %q", command, cfg.File, path)
			}
		}
	})
}

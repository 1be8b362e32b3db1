package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// loadFor parses args (a command and its flags) with a fresh command tree,
// as Run would, and loads that command's configuration.
func loadFor(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	root := newRootCmd(Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
	c, rest, err := root.Find(args)
	if err != nil {
		t.Fatalf("find command %q: %v", args, err)
	}
	if err := c.ParseFlags(rest); err != nil {
		t.Fatalf("parse flags %q: %v", rest, err)
	}
	configFile, err := c.Flags().GetString("config")
	if err != nil {
		t.Fatal(err)
	}
	return loadConfig(c.Flags(), configFile)
}

func mustLoad(t *testing.T, args ...string) *Config {
	t.Helper()
	cfg, err := loadFor(t, args...)
	if err != nil {
		t.Fatalf("loadConfig(%q): %v", args, err)
	}
	return cfg
}

// configFormats are the config file formats, by file extension.
var configFormats = []string{"yaml", "toml", "json"}

// renderConfig writes settings in format. Every value is written as JSON,
// which is also valid YAML flow syntax and, for the strings, numbers and
// arrays used here, TOML.
func renderConfig(t *testing.T, format string, settings map[string]any) string {
	t.Helper()
	if format == "json" {
		b, err := json.MarshalIndent(settings, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	sep := ": "
	if format == "toml" {
		sep = " = "
	}
	var b strings.Builder
	for _, key := range slices.Sorted(maps.Keys(settings)) {
		v, err := json.Marshal(settings[key])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s%s%s\n", key, sep, v)
	}
	return b.String()
}

// coreConfig keeps the fields of the seven keys tested in this file (and
// File), so that the comparisons do not change when keys are added.
func coreConfig(c *Config) *Config {
	return &Config{
		Addr:            c.Addr,
		BufferSize:      c.BufferSize,
		Messages:        c.Messages,
		LogLevel:        c.LogLevel,
		LogFormat:       c.LogFormat,
		ShutdownTimeout: c.ShutdownTimeout,
		Timeout:         c.Timeout,
		File:            c.File,
	}
}

// wantDefaults is the default configuration of the keys coreConfig keeps.
func wantDefaults(file string) *Config {
	return &Config{
		Addr:            "localhost:10000",
		BufferSize:      128,
		Messages:        []string{"This is the message. ", "It will be sent ", "in parts."},
		LogLevel:        zerolog.InfoLevel,
		LogFormat:       "text",
		ShutdownTimeout: 5 * time.Second,
		Timeout:         10 * time.Second,
		File:            file,
	}
}

// TestLoadConfigPrecedence sets each key in one or more layers, each with a
// different value, and checks that the highest layer wins: flags, then
// environment, then config file, then defaults.
func TestLoadConfigPrecedence(t *testing.T) {
	type key struct {
		name    string
		command string            // a command that has the key's flag
		get     func(*Config) any // the key's field in Config
		def     any               // its default
		file    any               // a value written to the config file
		envVal  string            // a value for ECHOCTL_*
		flagVal string            // a value for --name; "" when there is no flag
		inFile  any               // what file decodes to
		inEnv   any               // what envVal decodes to
		inFlag  any               // what flagVal decodes to
	}
	keys := []key{
		{
			name: "addr", command: "serve", get: func(c *Config) any { return c.Addr },
			def:  "localhost:10000",
			file: "file.example:1001", inFile: "file.example:1001",
			envVal: "env.example:1002", inEnv: "env.example:1002",
			flagVal: "flag.example:1003", inFlag: "flag.example:1003",
		},
		{
			name: "buffer-size", command: "send", get: func(c *Config) any { return c.BufferSize },
			def:  128,
			file: 1001, inFile: 1001,
			envVal: "1002", inEnv: 1002,
			flagVal: "1003", inFlag: 1003,
		},
		{
			// messages has no flag: send's arguments replace it (tested
			// through Run in TestSendArgumentsOverrideMessages).
			name: "messages", command: "send", get: func(c *Config) any { return c.Messages },
			def:  []string{"This is the message. ", "It will be sent ", "in parts."},
			file: []string{"file 1", "file 2"}, inFile: []string{"file 1", "file 2"},
			envVal: `["env 1", "env 2"]`, inEnv: []string{"env 1", "env 2"},
		},
		{
			name: "log-level", command: "serve", get: func(c *Config) any { return c.LogLevel },
			def:  zerolog.InfoLevel,
			file: "warn", inFile: zerolog.WarnLevel,
			envVal: "error", inEnv: zerolog.ErrorLevel,
			flagVal: "debug", inFlag: zerolog.DebugLevel,
		},
		{
			// The flag repeats the default: given explicitly, it still wins.
			name: "log-format", command: "send", get: func(c *Config) any { return c.LogFormat },
			def:  "text",
			file: "console", inFile: "console",
			envVal: "json", inEnv: "json",
			flagVal: "text", inFlag: "text",
		},
		{
			name: "shutdown-timeout", command: "serve", get: func(c *Config) any { return c.ShutdownTimeout },
			def:  5 * time.Second,
			file: "1s", inFile: time.Second,
			envVal: "2s", inEnv: 2 * time.Second,
			flagVal: "3s", inFlag: 3 * time.Second,
		},
		{
			name: "timeout", command: "send", get: func(c *Config) any { return c.Timeout },
			def:  10 * time.Second,
			file: "1m", inFile: time.Minute,
			envVal: "2m", inEnv: 2 * time.Minute,
			flagVal: "3m", inFlag: 3 * time.Minute,
		},
	}
	// Keys added after these seven are tested with their features.
	var covered []string
	for _, k := range keys {
		if !slices.Contains(knownKeys, k.name) {
			t.Fatalf("key %q is not in knownKeys %v", k.name, knownKeys)
		}
		covered = append(covered, k.name)
	}
	for _, k := range knownKeys {
		if !slices.Contains(covered, k) {
			t.Logf("key %q is not in this table", k)
		}
	}

	layers := []struct {
		name            string
		file, env, flag bool
	}{
		{name: "default"},
		{name: "file", file: true},
		{name: "env", env: true},
		{name: "env over file", file: true, env: true},
		{name: "flag", flag: true},
		{name: "flag over file", file: true, flag: true},
		{name: "flag over env", env: true, flag: true},
		{name: "flag over env and file", file: true, env: true, flag: true},
	}

	for _, k := range keys {
		for _, layer := range layers {
			if layer.flag && k.flagVal == "" {
				continue
			}
			want := k.def
			switch {
			case layer.flag:
				want = k.inFlag
			case layer.env:
				want = k.inEnv
			case layer.file:
				want = k.inFile
			}
			formats := configFormats
			if !layer.file {
				formats = []string{"no file"}
			}
			for _, format := range formats {
				t.Run(k.name+"/"+layer.name+"/"+format, func(t *testing.T) {
					dir := isolate(t)
					args := []string{k.command}
					if layer.file {
						path := writeFile(t, filepath.Join(dir, "conf", "config."+format),
							renderConfig(t, format, map[string]any{k.name: k.file}))
						args = append(args, "--config", path)
					}
					if layer.env {
						t.Setenv(envName(k.name), k.envVal)
					}
					if layer.flag {
						args = append(args, "--"+k.name, k.flagVal)
					}
					cfg := mustLoad(t, args...)
					if got := k.get(cfg); !reflect.DeepEqual(got, want) {
						t.Errorf("%s = %#v, want %#v", k.name, got, want)
					}
				})
			}
		}
	}
}

// TestLoadConfigHigherLayerHidesInvalid checks that only the value in use is
// validated: a bad value in a lower layer is ignored.
func TestLoadConfigHigherLayerHidesInvalid(t *testing.T) {
	dir := isolate(t)
	path := writeFile(t, filepath.Join(dir, "c.yaml"), "buffer-size: abc\nlog-level: loud\n")
	t.Setenv("ECHOCTL_BUFFER_SIZE", "256")
	t.Setenv("ECHOCTL_LOG_LEVEL", "trace-me")
	cfg := mustLoad(t, "send", "--config", path, "--log-level", "warn")
	if cfg.BufferSize != 256 || cfg.LogLevel != zerolog.WarnLevel {
		t.Errorf("buffer-size %d, log-level %v; want 256 (env over file) and warn (flag over env)", cfg.BufferSize, cfg.LogLevel)
	}
}

// TestLoadConfigFileFormats reads every key from a file written in each
// format's native syntax.
func TestLoadConfigFileFormats(t *testing.T) {
	want := &Config{
		Addr:            "127.0.0.1:7",
		BufferSize:      4096,
		Messages:        []string{"one ", "two"},
		LogLevel:        zerolog.DebugLevel,
		LogFormat:       "json",
		ShutdownTimeout: 1500 * time.Millisecond,
		Timeout:         time.Minute,
	}
	yaml := `# echoctl configuration
addr: 127.0.0.1:7
buffer-size: 4096
messages:
  - "one "
  - two
log-level: debug
log-format: json
shutdown-timeout: 1.5s
timeout: 1m
`
	tests := []struct{ name, content string }{
		{"config.yaml", yaml},
		{"config.yml", yaml},
		{"CONFIG.YAML", yaml},                      // an extension in any case
		{"config", yaml},                           // no extension: YAML
		{"markers.yaml", "---\n" + yaml + "...\n"}, // one document, marked
		{"config.toml", `# echoctl configuration
addr = "127.0.0.1:7"
buffer-size = 4096
messages = ["one ", "two"]
log-level = "debug"
log-format = "json"
shutdown-timeout = "1.5s"
timeout = "1m"
`},
		{"config.json", `{
  "addr": "127.0.0.1:7",
  "buffer-size": 4096,
  "messages": ["one ", "two"],
  "log-level": "debug",
  "log-format": "json",
  "shutdown-timeout": "1.5s",
  "timeout": "1m"
}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			path := writeFile(t, filepath.Join(dir, tt.name), tt.content)
			// serve takes shutdown-timeout, send timeout (TestKeysForTheirCommands).
			cfg := coreConfig(mustLoad(t, "serve", "--config", path))
			cfg.Timeout = mustLoad(t, "send", "--config", path).Timeout
			want := *want
			want.File = path
			if !reflect.DeepEqual(cfg, &want) {
				t.Errorf("\n got %+v\nwant %+v", cfg, &want)
			}
		})
	}
}

// TestLoadConfigEmptyFile: an empty config file (or one of white space)
// sets nothing, in every format: an empty .json was an error, "unexpected
// end of JSON input", where an empty .yaml was not.
func TestLoadConfigEmptyFile(t *testing.T) {
	dir := isolate(t)
	for _, name := range []string{"empty.yaml", "empty.toml", "empty.json", "blank.json", "blank.yaml"} {
		t.Run(name, func(t *testing.T) {
			content := ""
			if strings.HasPrefix(name, "blank") {
				content = " \n\t\n"
			}
			path := writeFile(t, filepath.Join(dir, name), content)
			if got, want := coreConfig(mustLoad(t, "serve", "--config", path)), wantDefaults(path); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want the defaults %+v", got, want)
			}
		})
	}
}

// TestLoadConfigZeroDuration: the duration error message promises "0 for no
// limit", and 0 works from flags and the environment; it must work from a
// config file too, where it is written as a number.
func TestLoadConfigZeroDuration(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		isolate(t)
		t.Setenv("ECHOCTL_TIMEOUT", "0")
		if cfg := mustLoad(t, "send"); cfg.Timeout != 0 {
			t.Errorf("timeout = %v, want 0", cfg.Timeout)
		}
	})
	t.Run("flag", func(t *testing.T) {
		isolate(t)
		if cfg := mustLoad(t, "send", "--timeout", "0"); cfg.Timeout != 0 {
			t.Errorf("timeout = %v, want 0", cfg.Timeout)
		}
	})
	t.Run("file string", func(t *testing.T) {
		dir := isolate(t)
		path := writeFile(t, filepath.Join(dir, "c.yaml"), "timeout: 0s\n")
		if cfg := mustLoad(t, "send", "--config", path); cfg.Timeout != 0 {
			t.Errorf("timeout = %v, want 0", cfg.Timeout)
		}
	})
	for _, format := range configFormats {
		t.Run("file number/"+format, func(t *testing.T) {
			dir := isolate(t)
			path := writeFile(t, filepath.Join(dir, "c."+format), renderConfig(t, format, map[string]any{"timeout": 0}))
			if cfg := mustLoad(t, "send", "--config", path); cfg.Timeout != 0 {
				t.Errorf("timeout = %v, want 0", cfg.Timeout)
			}
		})
	}
}

func TestLoadConfigSearchPath(t *testing.T) {
	const yamlAddr = "addr: %s\n"
	tests := []struct {
		name string
		// setup writes config files and sets the environment; it returns
		// the file that must be read and the args to add.
		setup func(t *testing.T, wd, home, xdg string) (want string, args []string)
	}{
		{"./echoctl.yaml", func(t *testing.T, wd, home, xdg string) (string, []string) {
			writeFile(t, filepath.Join(wd, "echoctl.yaml"), fmt.Sprintf(yamlAddr, "echoctl.yaml:1"))
			return "echoctl.yaml", nil
		}},
		{"./echoctl.yml", func(t *testing.T, wd, home, xdg string) (string, []string) {
			writeFile(t, filepath.Join(wd, "echoctl.yml"), fmt.Sprintf(yamlAddr, "echoctl.yml:1"))
			return "echoctl.yml", nil
		}},
		{"./echoctl.toml", func(t *testing.T, wd, home, xdg string) (string, []string) {
			writeFile(t, filepath.Join(wd, "echoctl.toml"), `addr = "echoctl.toml:1"`+"\n")
			return "echoctl.toml", nil
		}},
		{"./echoctl.json", func(t *testing.T, wd, home, xdg string) (string, []string) {
			writeFile(t, filepath.Join(wd, "echoctl.json"), `{"addr": "echoctl.json:1"}`)
			return "echoctl.json", nil
		}},
		{"yaml before toml and json", func(t *testing.T, wd, home, xdg string) (string, []string) {
			writeFile(t, filepath.Join(wd, "echoctl.json"), `{"addr": "echoctl.json:1"}`)
			writeFile(t, filepath.Join(wd, "echoctl.toml"), `addr = "echoctl.toml:1"`+"\n")
			writeFile(t, filepath.Join(wd, "echoctl.yaml"), fmt.Sprintf(yamlAddr, "echoctl.yaml:1"))
			return "echoctl.yaml", nil
		}},
		{"XDG_CONFIG_HOME", func(t *testing.T, wd, home, xdg string) (string, []string) {
			p := writeFile(t, filepath.Join(xdg, "echoctl", "config.yaml"), fmt.Sprintf(yamlAddr, "xdg:1"))
			writeFile(t, filepath.Join(home, ".config", "echoctl", "config.yaml"), fmt.Sprintf(yamlAddr, "home:1"))
			return p, nil
		}},
		{"XDG_CONFIG_HOME toml", func(t *testing.T, wd, home, xdg string) (string, []string) {
			p := writeFile(t, filepath.Join(xdg, "echoctl", "config.toml"), `addr = "xdg:1"`+"\n")
			return p, nil
		}},
		{"HOME/.config when XDG_CONFIG_HOME is unset", func(t *testing.T, wd, home, xdg string) (string, []string) {
			unsetenv(t, "XDG_CONFIG_HOME")
			p := writeFile(t, filepath.Join(home, ".config", "echoctl", "config.yaml"), fmt.Sprintf(yamlAddr, "home:1"))
			return p, nil
		}},
		{"working directory before XDG_CONFIG_HOME", func(t *testing.T, wd, home, xdg string) (string, []string) {
			writeFile(t, filepath.Join(xdg, "echoctl", "config.yaml"), fmt.Sprintf(yamlAddr, "xdg:1"))
			writeFile(t, filepath.Join(wd, "echoctl.yaml"), fmt.Sprintf(yamlAddr, "echoctl.yaml:1"))
			return "echoctl.yaml", nil
		}},
		{"ECHOCTL_CONFIG before the search path", func(t *testing.T, wd, home, xdg string) (string, []string) {
			writeFile(t, filepath.Join(wd, "echoctl.yaml"), fmt.Sprintf(yamlAddr, "echoctl.yaml:1"))
			p := writeFile(t, filepath.Join(home, "elsewhere.toml"), `addr = "env:1"`+"\n")
			t.Setenv("ECHOCTL_CONFIG", p)
			return p, nil
		}},
		{"--config before ECHOCTL_CONFIG", func(t *testing.T, wd, home, xdg string) (string, []string) {
			writeFile(t, filepath.Join(wd, "echoctl.yaml"), fmt.Sprintf(yamlAddr, "echoctl.yaml:1"))
			t.Setenv("ECHOCTL_CONFIG", writeFile(t, filepath.Join(home, "env.yaml"), fmt.Sprintf(yamlAddr, "env:1")))
			p := writeFile(t, filepath.Join(home, "flag.json"), `{"addr": "flag:1"}`)
			return p, []string{"--config", p}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wd := isolate(t)
			home, xdg := t.TempDir(), t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("XDG_CONFIG_HOME", xdg)
			want, args := tt.setup(t, wd, home, xdg)
			cfg := mustLoad(t, append([]string{"serve"}, args...)...)
			if cfg.File != want {
				t.Errorf("read config file %q, want %q", cfg.File, want)
			}
			// Each file sets addr to a value naming the file it is in.
			if cfg.Addr == wantDefaults("").Addr {
				t.Errorf("addr = %q: the file's value was not used", cfg.Addr)
			}
		})
	}
}

// TestLoadConfigSearchPathStopsAtABrokenFile: a path of the search that
// is there but cannot be read (a dangling symbolic link) is an error
// naming it, as an unreadable file is, not a file to pass over for the
// next one: the XDG file was read in its place.
func TestLoadConfigSearchPathStopsAtABrokenFile(t *testing.T) {
	wd := isolate(t)
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	writeFile(t, filepath.Join(xdg, "echoctl", "config.yaml"), "addr: xdg:1\n")
	if err := os.Symlink(filepath.Join(wd, "gone.yaml"), filepath.Join(wd, "echoctl.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := loadFor(t, "serve")
	if err == nil || !strings.Contains(err.Error(), "config file echoctl.yaml: ") {
		t.Fatalf("error %v, want one naming echoctl.yaml", err)
	}
}

func TestLoadConfigMessagesFromEnv(t *testing.T) {
	tests := []struct {
		env     string
		want    []string
		wantErr string
	}{
		{env: `["one", "two"]`, want: []string{"one", "two"}},
		{env: `  ["leading space"]`, want: []string{"leading space"}},
		{env: `["line\nbreak", "tab\t", "\u00e9"]`, want: []string{"line\nbreak", "tab\t", "é"}},
		{env: `[]`, want: []string{}},
		{env: `hello`, want: []string{"hello"}},
		{env: `a,b c`, want: []string{"a,b c"}},
		{env: `"quoted"`, want: []string{`"quoted"`}},
		{env: ` plain with spaces `, want: []string{" plain with spaces "}},
		{env: `[oops`, wantErr: `invalid messages "[oops" from environment ECHOCTL_MESSAGES: must be a JSON array of strings, such as ["one", "two"]`},
		{env: `["a", 1]`, wantErr: `invalid messages "[\"a\", 1]" from environment ECHOCTL_MESSAGES: must be a JSON array of strings, such as ["one", "two"]`},
		{env: `[null, "a", null]`, wantErr: `invalid messages "[null, \"a\", null]" from environment ECHOCTL_MESSAGES: must be a JSON array of strings, such as ["one", "two"]`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			isolate(t)
			t.Setenv("ECHOCTL_MESSAGES", tt.env)
			cfg, err := loadFor(t, "send")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Messages, tt.want) {
				t.Errorf("messages = %q, want %q", cfg.Messages, tt.want)
			}
		})
	}
}

// Reasons given by the validation errors.
const (
	addrReason     = "missing port (want host:port, such as localhost:10000)" // echo.ParseAddr names the bad part
	sizeReason     = "must be an integer from 1 to 16777216"
	durationReason = "must be a duration of 0 or more, such as 500ms, 10s or 1m (0 for no limit)"
	// connTimeoutReason is for idle-timeout and write-timeout beyond
	// echo.MaxTimeout.
	connTimeoutReason = "must be at most 10000h (0 for no limit)"
	levelReason       = "must be one of trace, debug, info, warn, error, disabled"
	formatReason      = "must be one of text, console, json"
)

// TestRunInvalidConfig checks every invalid value through Run: exit code
// 2, nothing on stdout, and exactly one line on stderr that names the key,
// the value as given and where it came from.
func TestRunInvalidConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string          // the command and its flags
		env     map[string]string // ECHOCTL_* variables
		file    string            // config file name, passed with --config
		content string            // its content
		want    string            // the message; %[1]s is the config file's path
	}{
		{name: "addr env no port", args: []string{"serve"}, env: map[string]string{"ECHOCTL_ADDR": "localhost"},
			want: `invalid addr "localhost" from environment ECHOCTL_ADDR: ` + addrReason},
		{name: "addr flag empty serve", args: []string{"serve", "--addr", ""},
			want: `invalid addr "" from flag --addr: missing host:port`},
		{name: "addr flag empty send", args: []string{"send", "--addr", ""},
			want: `invalid addr "" from flag --addr: missing host:port`},
		{name: "addr flag port too big", args: []string{"send", "--addr", "localhost:65536"},
			want: `invalid addr "localhost:65536" from flag --addr: port "65536" out of range: want 0 to 65535`},
		{name: "addr yaml number", args: []string{"serve"}, file: "c.yaml", content: "addr: 10000\n",
			want: `invalid addr 10000 from config file %[1]s: must be a string host:port`},
		{name: "addr toml no port", args: []string{"serve"}, file: "c.toml", content: `addr = "localhost"` + "\n",
			want: `invalid addr "localhost" from config file %[1]s: ` + addrReason},
		{name: "addr json port name", args: []string{"send"}, file: "c.json", content: `{"addr": "localhost:echo"}`,
			want: `invalid addr "localhost:echo" from config file %[1]s: port "echo" is not a number from 0 to 65535`},

		{name: "buffer-size env not a number", args: []string{"serve"}, env: map[string]string{"ECHOCTL_BUFFER_SIZE": "abc"},
			want: `invalid buffer-size "abc" from environment ECHOCTL_BUFFER_SIZE: ` + sizeReason},
		{name: "buffer-size env hex", args: []string{"serve"}, env: map[string]string{"ECHOCTL_BUFFER_SIZE": "0x80"},
			want: `invalid buffer-size "0x80" from environment ECHOCTL_BUFFER_SIZE: ` + sizeReason},
		{name: "buffer-size flag zero", args: []string{"serve", "--buffer-size", "0"},
			want: `invalid buffer-size 0 from flag --buffer-size: ` + sizeReason},
		{name: "buffer-size yaml too big", args: []string{"send"}, file: "c.yaml", content: "buffer-size: 16777217\n",
			want: `invalid buffer-size 16777217 from config file %[1]s: ` + sizeReason},
		{name: "buffer-size toml negative", args: []string{"send"}, file: "c.toml", content: "buffer-size = -1\n",
			want: `invalid buffer-size -1 from config file %[1]s: ` + sizeReason},
		{name: "buffer-size json fraction", args: []string{"serve"}, file: "c.json", content: `{"buffer-size": 1.5}`,
			want: `invalid buffer-size 1.5 from config file %[1]s: ` + sizeReason},
		{name: "buffer-size yaml string", args: []string{"serve"}, file: "c.yml", content: "buffer-size: big\n",
			want: `invalid buffer-size "big" from config file %[1]s: ` + sizeReason},

		{name: "messages env bad JSON", args: []string{"send"}, env: map[string]string{"ECHOCTL_MESSAGES": `["a", 1]`},
			want: `invalid messages "[\"a\", 1]" from environment ECHOCTL_MESSAGES: must be a JSON array of strings, such as ["one", "two"]`},
		{name: "messages yaml numbers", args: []string{"send"}, file: "c.yaml", content: "messages: [1, true]\n",
			want: `invalid messages [1,true] from config file %[1]s: must be a list of strings (quote numbers and booleans)`},
		{name: "messages json number", args: []string{"send"}, file: "c.json", content: `{"messages": 5}`,
			want: `invalid messages 5 from config file %[1]s: must be a list of strings`},

		{name: "log-level env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_LOG_LEVEL": "loud"},
			want: `invalid log-level "loud" from environment ECHOCTL_LOG_LEVEL: ` + levelReason},
		{name: "log-level flag upper case", args: []string{"send", "--log-level", "INFO"},
			want: `invalid log-level "INFO" from flag --log-level: ` + levelReason},
		{name: "log-level flag fatal", args: []string{"serve", "--log-level", "fatal"},
			want: `invalid log-level "fatal" from flag --log-level: ` + levelReason},
		{name: "log-level yaml number", args: []string{"serve"}, file: "c.yaml", content: "log-level: 3\n",
			want: `invalid log-level 3 from config file %[1]s: must be a string`},
		{name: "log-level toml", args: []string{"serve"}, file: "c.toml", content: `log-level = "warning"` + "\n",
			want: `invalid log-level "warning" from config file %[1]s: ` + levelReason},

		{name: "log-format env", args: []string{"serve"}, env: map[string]string{"ECHOCTL_LOG_FORMAT": "xml"},
			want: `invalid log-format "xml" from environment ECHOCTL_LOG_FORMAT: ` + formatReason},
		{name: "log-format flag", args: []string{"send", "--log-format", "logfmt"},
			want: `invalid log-format "logfmt" from flag --log-format: ` + formatReason},
		{name: "log-format toml", args: []string{"serve"}, file: "c.toml", content: `log-format = "JSON"` + "\n",
			want: `invalid log-format "JSON" from config file %[1]s: ` + formatReason},
		{name: "log-format json list", args: []string{"serve"}, file: "c.json", content: `{"log-format": ["json"]}`,
			want: `invalid log-format ["json"] from config file %[1]s: must be a string`},

		{name: "shutdown-timeout env no unit", args: []string{"serve"}, env: map[string]string{"ECHOCTL_SHUTDOWN_TIMEOUT": "5"},
			want: `invalid shutdown-timeout "5" from environment ECHOCTL_SHUTDOWN_TIMEOUT: ` + durationReason},
		{name: "shutdown-timeout env negative", args: []string{"serve"}, env: map[string]string{"ECHOCTL_SHUTDOWN_TIMEOUT": "-1s"},
			want: `invalid shutdown-timeout "-1s" from environment ECHOCTL_SHUTDOWN_TIMEOUT: ` + durationReason},
		{name: "shutdown-timeout yaml", args: []string{"serve"}, file: "c.yaml", content: "shutdown-timeout: soon\n",
			want: `invalid shutdown-timeout "soon" from config file %[1]s: ` + durationReason},
		{name: "shutdown-timeout flag negative", args: []string{"serve", "--shutdown-timeout", "-1s"},
			want: `invalid shutdown-timeout "-1s" from flag --shutdown-timeout: ` + durationReason},
		// pflag has parsed the flag: the value is shown as it formats it.
		{name: "timeout flag negative", args: []string{"send", "--timeout", "-2m"},
			want: `invalid timeout "-2m" from flag --timeout: ` + durationReason},
		{name: "timeout toml number", args: []string{"send"}, file: "c.toml", content: "timeout = 5\n",
			want: `invalid timeout 5 from config file %[1]s: ` + durationReason},
		{name: "timeout json words", args: []string{"send"}, file: "c.json", content: `{"timeout": "1 minute"}`,
			want: `invalid timeout "1 minute" from config file %[1]s: ` + durationReason},
		{name: "timeout env", args: []string{"send"}, env: map[string]string{"ECHOCTL_TIMEOUT": "10 s"},
			want: `invalid timeout "10 s" from environment ECHOCTL_TIMEOUT: ` + durationReason},

		// Beyond echo.MaxTimeout the server's deadlines would overflow and
		// close every connection at once.
		{name: "idle-timeout flag too long", args: []string{"serve", "--idle-timeout", "2500000h"},
			want: `invalid idle-timeout "2500000h" from flag --idle-timeout: ` + connTimeoutReason},
		{name: "write-timeout flag too long", args: []string{"serve", "--write-timeout", "2500000h"},
			want: `invalid write-timeout "2500000h" from flag --write-timeout: ` + connTimeoutReason},
		{name: "idle-timeout env just over", args: []string{"serve"}, env: map[string]string{"ECHOCTL_IDLE_TIMEOUT": "10000h1s"},
			want: `invalid idle-timeout "10000h1s" from environment ECHOCTL_IDLE_TIMEOUT: ` + connTimeoutReason},
		{name: "write-timeout yaml too long", args: []string{"serve"}, file: "c.yaml", content: "write-timeout: 20000h\n",
			want: `invalid write-timeout "20000h" from config file %[1]s: ` + connTimeoutReason},
		// The clients' timeout too, with the same bound on every command
		// (ping's said --timeout when the file or environment set it).
		{name: "timeout flag too long", args: []string{"send", "--timeout", "100000h"},
			want: `invalid timeout "100000h" from flag --timeout: must be at most 10000h`},
		{name: "timeout env too long, ping", args: []string{"ping"}, env: map[string]string{"ECHOCTL_TIMEOUT": "100000h"},
			want: `invalid timeout "100000h" from environment ECHOCTL_TIMEOUT: must be at most 10000h`},

		{name: "first invalid key wins", args: []string{"send"}, env: map[string]string{"ECHOCTL_TIMEOUT": "x", "ECHOCTL_ADDR": "y"},
			want: `invalid addr "y" from environment ECHOCTL_ADDR: ` + addrReason},
		{name: "empty env var is not the source", args: []string{"serve"}, env: map[string]string{"ECHOCTL_BUFFER_SIZE": ""},
			file: "c.yaml", content: "buffer-size: abc\n",
			want: `invalid buffer-size "abc" from config file %[1]s: ` + sizeReason},
		{name: "value with two spaces is shown exactly", args: []string{"serve"}, env: map[string]string{"ECHOCTL_LOG_LEVEL": "de  bug"},
			want: `invalid log-level "de  bug" from environment ECHOCTL_LOG_LEVEL: ` + levelReason},
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
			// The error is the same from loadConfig and through Run.
			if _, err := loadFor(t, args...); err == nil || err.Error() != want {
				t.Errorf("loadConfig error:\n got %v\nwant %s", err, want)
			}
			checkUsageError(t, run(t, cancelledContext(), args...), want)
		})
	}
}

// checkUsageError checks that a run failed with exit code 2, printing
// nothing on stdout and exactly "echoctl: " + want on stderr.
func checkUsageError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != ExitUsage {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, ExitUsage, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if wantErr := "echoctl: " + want + "\n"; r.stderr != wantErr {
		t.Errorf("stderr:\n got %q\nwant %q", r.stderr, wantErr)
	}
}

// TestRunConfigFileErrors covers a config file that cannot be used.
func TestRunConfigFileErrors(t *testing.T) {
	// The message lists every key; keys are added with features.
	known := strings.Join(knownKeys, ", ")
	if !strings.HasPrefix(known, "addr, buffer-size, messages, log-level, log-format, shutdown-timeout, timeout") {
		t.Fatalf("knownKeys = %q, want the seven keys first, in the documented order", known)
	}
	// multiDoc is read up to the "---", and the rest was ignored.
	const multiDoc = "timeout: 5s\n---\nbuffer-size: bogus\nnonsense-key: 1\n"
	tests := []struct {
		name    string
		file    string // written in the temporary directory
		content string
		// make, if set, makes the file at path instead of content.
		make func(t *testing.T, path string)
		env  string // ECHOCTL_CONFIG, if set
		// args are flags; if nil and env is "", --config FILE; if empty,
		// none, and the file is found on the search path.
		args []string
		// want is the whole message, or its prefix if prefix is set; %[1]s
		// is the file's path.
		want   string
		prefix bool
	}{
		{name: "--config missing", args: []string{"--config", "%[1]s"}, file: "missing.yaml",
			want: "config file %[1]s: no such file or directory"},
		{name: "--config empty", args: []string{"--config", ""}, file: "unused.yaml",
			want: `invalid --config "": name a config file, or leave --config out to search for one`},
		{name: "ECHOCTL_CONFIG missing", env: "%[1]s", file: "missing.toml",
			want: "config file %[1]s: no such file or directory"},
		{name: "unknown key yaml", file: "c.yaml", content: "addr: localhost:1\nport: 10000\n",
			want: `config file %[1]s: unknown key "port" (known keys: ` + known + `)`},
		{name: "unknown key toml", file: "c.toml", content: "verbose = true\n",
			want: `config file %[1]s: unknown key "verbose" (known keys: ` + known + `)`},
		{name: "unknown key json", file: "c.json", content: `{"buffer_size": 5}`,
			want: `config file %[1]s: unknown key "buffer_size" (known keys: ` + known + `)`},
		{name: "nested table toml", file: "c.toml", content: "[server]\naddr = \"localhost:1\"\n",
			want: `config file %[1]s: unknown key "server" (known keys: ` + known + `)`},
		{name: "nested key under a known key", file: "c.yaml", content: "addr:\n  host: localhost\n",
			want: `invalid addr {"host":"localhost"} from config file %[1]s: must be a value, not a table of keys (addr.host)`},
		{name: "unparseable yaml", file: "c.yaml", content: "addr: [localhost\nbuffer-size: 1\n",
			want: "config file %[1]s: ", prefix: true},
		{name: "unparseable toml", file: "c.toml", content: "addr = \n",
			want: "config file %[1]s: ", prefix: true},
		{name: "unparseable json", file: "c.json", content: `{"addr": "localhost:1",}`,
			want: "config file %[1]s: ", prefix: true},
		{name: "unsupported extension", file: "c.ini", content: "addr=localhost:1\n",
			want: "config file %[1]s: ", prefix: true},
		{name: "viper format not documented", file: "c.env", content: "ADDR=localhost:1\n",
			want: `config file %[1]s: Unsupported Config Type "env"`},

		// Only regular files are read, and never opened otherwise: a FIFO
		// would block the open until something writes it.
		{name: "--config FIFO", file: "fifo.yaml", make: mkfifo,
			want: "config file %[1]s: not a regular file but a named pipe (FIFO)"},
		{name: "ECHOCTL_CONFIG FIFO", file: "fifo.toml", make: mkfifo, env: "%[1]s",
			want: "config file %[1]s: not a regular file but a named pipe (FIFO)"},
		{name: "FIFO on the search path", file: "echoctl.yaml", make: mkfifo, args: []string{},
			want: "config file echoctl.yaml: not a regular file but a named pipe (FIFO)"},
		{name: "symbolic link to a FIFO", file: "link.yaml", make: func(t *testing.T, path string) {
			mkfifo(t, path+".fifo")
			symlink(t, path+".fifo", path)
		}, want: "config file %[1]s: not a regular file but a named pipe (FIFO)"},
		{name: "directory", file: "dir.yaml", make: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, want: "config file %[1]s: not a regular file but a directory"},
		{name: "over the size limit", file: "big.yaml", content: strings.Repeat("#", maxConfigSize+1),
			want: "config file %[1]s: larger than 1 MiB, too large for a config file"},

		{name: "second yaml document", file: "c.yaml", content: multiDoc,
			want: "config file %[1]s: more than one YAML document (---): a second starts at line 2; a config file holds one"},
		{name: "empty second yaml document", file: "c.yaml", content: "timeout: 5s\n...\n---\n",
			want: "config file %[1]s: more than one YAML document (---): a second starts at line 3; a config file holds one"},
		{name: "second yaml document that does not parse", file: "c.yml", content: "timeout: 5s\n---\naddr: [\n",
			want: "config file %[1]s: more than one YAML document (---), and the second does not parse: yaml: line 3: did not find expected node content; a config file holds one"},

		// Exact duplicates are refused by the YAML and TOML parsers
		// (docs/configuration.md); viper lower-cases keys, which would
		// merge keys that differ only in case.
		{name: "keys differing in case yaml", file: "c.yaml", content: "addr: localhost:1\nAddr: localhost:2\n",
			want: `config file %[1]s: key "addr" is set twice, as "Addr" and "addr" (keys are not case-sensitive)`},
		{name: "keys differing in case toml", file: "c.toml", content: "addr = \"localhost:1\"\nADDR = \"localhost:2\"\n",
			want: `config file %[1]s: key "addr" is set twice, as "ADDR" and "addr" (keys are not case-sensitive)`},
		{name: "keys differing in case faults section", file: "c.yaml", content: "faults:\n  delay: 1ms\n  Delay: 2ms\n",
			want: `config file %[1]s: key "faults.delay" is set twice, as "Delay" and "delay" (keys are not case-sensitive)`},
		{name: "duplicate key json", file: "c.json", content: `{"addr": "localhost:1", "addr": "localhost:2"}`,
			want: `config file %[1]s: key "addr" is set twice`},
		{name: "keys differing in case json", file: "c.json", content: `{"addr": "localhost:1", "Addr": "localhost:2"}`,
			want: `config file %[1]s: key "addr" is set twice, as "addr" and "Addr" (keys are not case-sensitive)`},
		{name: "duplicate key json faults section", file: "c.json", content: `{"faults": {"delay": "1ms", "delay": "2ms"}}`,
			want: `config file %[1]s: key "faults.delay" is set twice`},

		// A null is not the default: it is refused.
		{name: "yaml null", file: "c.yaml", content: "addr: ~\n",
			want: `config file %[1]s: key "addr" is null: give it a value, or leave it out for its default`},
		{name: "yaml empty value in faults section", file: "c.yaml", content: "faults:\n  delay:\n",
			want: `config file %[1]s: key "faults.delay" is null: give it a value, or leave it out for its default`},
		{name: "json null item", file: "c.json", content: `{"messages": ["a", null]}`,
			want: `config file %[1]s: key "messages" holds a null item: give each item a value`},

		// Integers are decimal in files too: YAML reads 0100 as octal,
		// and both parsers read hexadecimal, octal, binary and 1_0.
		{name: "yaml leading zero", file: "c.yaml", content: "buffer-size: 0100\n",
			want: `config file %[1]s: key "buffer-size": "0100" is not a decimal integer (YAML would read it as octal; write 100 for the decimal number)`},
		{name: "yaml negative leading zero", file: "c.yaml", content: "max-conns: -010\n",
			want: `config file %[1]s: key "max-conns": "-010" is not a decimal integer (YAML would read it as octal; write -10 for the decimal number)`},
		{name: "yaml hexadecimal", file: "c.yaml", content: "buffer-size: 0x10\n",
			want: `config file %[1]s: key "buffer-size": "0x10" is not a decimal integer (integers are decimal; 0x10, 0o10, 0b11 and 1_0 are refused)`},
		{name: "yaml underscore in faults section", file: "c.yaml", content: "faults:\n  slice: 1_0\n",
			want: `config file %[1]s: key "faults.slice": "1_0" is not a decimal integer (integers are decimal; 0x10, 0o10, 0b11 and 1_0 are refused)`},
		{name: "toml octal", file: "c.toml", content: "buffer-size = 0o10\n",
			want: `config file %[1]s: key "buffer-size": "0o10" is not a decimal integer (integers are decimal; 0x10, 0o10, 0b11 and 1_0 are refused)`},
		{name: "toml binary in a table", file: "c.toml", content: "[faults]\nslice = 0b11\n",
			want: `config file %[1]s: key "faults.slice": "0b11" is not a decimal integer (integers are decimal; 0x10, 0o10, 0b11 and 1_0 are refused)`},
		{name: "toml underscore in an array", file: "c.toml", content: "messages = [1, 1_0]\n",
			want: `config file %[1]s: key "messages": "1_0" is not a decimal integer (integers are decimal; 0x10, 0o10, 0b11 and 1_0 are refused)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			path := filepath.Join(dir, tt.file)
			switch {
			case tt.make != nil:
				tt.make(t, path)
			case tt.content != "":
				writeFile(t, path, tt.content)
			}
			args := []string{"serve"}
			switch {
			case tt.env != "":
				t.Setenv("ECHOCTL_CONFIG", strings.ReplaceAll(tt.env, "%[1]s", path))
			case tt.args == nil:
				args = append(args, "--config", path)
			}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "%[1]s", path))
			}
			want := strings.ReplaceAll(tt.want, "%[1]s", path)
			r := run(t, cancelledContext(), args...)
			if !tt.prefix {
				checkUsageError(t, r, want)
				return
			}
			if r.code != ExitUsage {
				t.Errorf("exit code %d, want %d", r.code, ExitUsage)
			}
			line, ok := strings.CutPrefix(r.stderr, "echoctl: "+want)
			if !ok || line == "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
				t.Errorf("stderr = %q, want one line starting %q and saying why", r.stderr, "echoctl: "+want)
			}
		})
	}
}

// mkfifo makes a named pipe at path. The code under test must not open
// it: an open for reading would block until something opens it for
// writing. So that the test fails rather than hangs if it does, a watchdog
// opens the pipe for writing and closes it after fifoWatchdog, which ends
// that open and the read after it (at EOF).
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-done:
		case <-time.After(fifoWatchdog):
			t.Errorf("%s is still open for reading after %v: the FIFO was opened", path, fifoWatchdog)
			if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
	})
}

// fifoWatchdog is how long mkfifo's watchdog waits: far longer than a
// config file takes to load.
const fifoWatchdog = 30 * time.Second

// symlink makes newname a symbolic link to oldname.
func symlink(t *testing.T, oldname, newname string) {
	t.Helper()
	if err := os.Symlink(oldname, newname); err != nil {
		t.Fatal(err)
	}
}

func TestVerboseSetsDebugLevel(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string // ECHOCTL_LOG_LEVEL
		want    zerolog.Level
		wantErr string // a usage error instead
	}{
		{name: "default", want: zerolog.InfoLevel},
		{name: "-v", args: []string{"-v"}, want: zerolog.DebugLevel},
		{name: "--verbose", args: []string{"--verbose"}, want: zerolog.DebugLevel},
		{name: "-v and --log-level debug", args: []string{"-v", "--log-level", "debug"}, want: zerolog.DebugLevel},
		{name: "-v against --log-level", args: []string{"-v", "--log-level", "error"},
			wantErr: "-v (--verbose) is --log-level debug: give one of them, not --log-level error as well"},
		{name: "-v against --log-level trace", args: []string{"--log-level", "trace", "--verbose"},
			wantErr: "-v (--verbose) is --log-level debug: give one of them, not --log-level trace as well"},
		{name: "-v over environment", args: []string{"-v"}, env: "warn", want: zerolog.DebugLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			if tt.env != "" {
				t.Setenv("ECHOCTL_LOG_LEVEL", tt.env)
			}
			opts := &globalOptions{}
			c := &cobra.Command{Use: "test"}
			opts.addFlags(c.Flags())
			if err := c.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cfg, logger, err := opts.setup(c, &stderr)
			if tt.wantErr != "" {
				var ue usageError
				if !errors.As(err, &ue) || err.Error() != tt.wantErr {
					t.Fatalf("setup = %v, want the usage error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.LogLevel != tt.want || logger.GetLevel() != tt.want {
				t.Errorf("config level %v, logger level %v; want %v", cfg.LogLevel, logger.GetLevel(), tt.want)
			}
			logger.Debug().Str("logger", "test").Msg("debug line")
			if got, want := stderr.String() != "", tt.want == zerolog.DebugLevel; got != want {
				t.Errorf("debug line written: %v, want %v (stderr %q)", got, want, stderr.String())
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"ADDR", "ADDR", 0},
		{"BUFER_SIZE", "BUFFER_SIZE", 1},    // insertion
		{"TIMEOUTT", "TIMEOUT", 1},          // deletion
		{"LOG_LEVAL", "LOG_LEVEL", 1},       // substitution
		{"MAXCONNS", "MAX_CONNS_PER_IP", 8}, // insertions only
		{"kitten", "sitting", 3},
		{"flaw", "lawn", 2},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

// TestUnknownEnvWarnings: an ECHOCTL_* variable echoctl does not read is
// warned about, naming the closest one it reads; the ones it reads, the
// soak test's and empty ones are not.
func TestUnknownEnvWarnings(t *testing.T) {
	const ignored = " is not one echoctl reads: ignored"
	root := newRootCmd(Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
	bench, _, err := root.Find([]string{"bench"})
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.ParseFlags(nil); err != nil { // merges the global flags, as a run does
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"none", []string{"PATH=/bin", "HOME=/root"}, nil},
		{"every key and the config file", []string{"ECHOCTL_ADDR=x", "ECHOCTL_BUFFER_SIZE=1", "ECHOCTL_TLS_SELF_SIGNED=true", "ECHOCTL_CONFIG=c.yaml"}, nil},
		{"soak test", []string{"ECHOCTL_SOAK=1", "ECHOCTL_SOAK_DURATION=2m"}, nil},
		{"empty counts as unset", []string{"ECHOCTL_BUFER_SIZE="}, nil},
		{"other prefix", []string{"ECHOCTLX=1", "MY_ECHOCTL_ADDR=1", "echoctl_addr=1"}, nil},
		{"misspelt", []string{"ECHOCTL_BUFER_SIZE=1"},
			[]string{"environment variable ECHOCTL_BUFER_SIZE" + ignored + "; did you mean ECHOCTL_BUFFER_SIZE?"}},
		{"lower case", []string{"ECHOCTL_log_level=debug"},
			[]string{"environment variable ECHOCTL_log_level" + ignored + "; did you mean ECHOCTL_LOG_LEVEL?"}},
		{"config misspelt", []string{"ECHOCTL_CONFG=c.yaml"},
			[]string{"environment variable ECHOCTL_CONFG" + ignored + "; did you mean ECHOCTL_CONFIG?"}},
		{"a flag only", []string{"ECHOCTL_CONNS=10", "ECHOCTL_VERBOSE=1"},
			[]string{"environment variable ECHOCTL_CONNS" + ignored + "; --conns is a flag only",
				"environment variable ECHOCTL_VERBOSE" + ignored + "; --verbose is a flag only"}},
		{"nothing close, sorted by name", []string{"ECHOCTL_ZZZ=1", "ECHOCTL_PORT=7"},
			[]string{"environment variable ECHOCTL_PORT" + ignored, "environment variable ECHOCTL_ZZZ" + ignored}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unknownEnvWarnings(tt.environ, bench.Flags()); !slices.Equal(got, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestUnknownEnvLogged: the warning is one log line on stderr, at warn, and
// the command goes on.
func TestUnknownEnvLogged(t *testing.T) {
	isolate(t)
	t.Setenv("ECHOCTL_BUFER_SIZE", "1")
	opts := &globalOptions{}
	c := &cobra.Command{Use: "test"}
	opts.addFlags(c.Flags())
	var stderr bytes.Buffer
	if _, _, err := opts.setup(c, &stderr); err != nil {
		t.Fatal(err)
	}
	want := "main: environment variable ECHOCTL_BUFER_SIZE is not one echoctl reads: ignored; did you mean ECHOCTL_BUFFER_SIZE?\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

// TestQuoteValueCut: an error shows at most quotedMax bytes of a value.
func TestQuoteValueCut(t *testing.T) {
	long := strings.Repeat("a", quotedMax+5)
	tests := []struct {
		in   any
		want string
	}{
		{"short", `"short"`},
		{long, strconv.Quote(long[:quotedMax]) + "... (5 more bytes)"},
		{[]string{"a"}, `["a"]`},
		{[]string{long}, `["` + long[:quotedMax-2] + "... (9 more bytes)"},
	}
	for _, tt := range tests {
		if got := quoteValue(tt.in); got != tt.want {
			t.Errorf("quoteValue(%.20v...) = %.60q..., want %.60q...", tt.in, got, tt.want)
		}
	}
}

// TestKeysForTheirCommands: a key with flags is used by the commands
// that have its flag; the others validate it and leave it at its
// default, so that one file serves every command.
func TestKeysForTheirCommands(t *testing.T) {
	dir := isolate(t)
	path := writeFile(t, filepath.Join(dir, "c.yaml"), "buffer-size: 64\nproxy-protocol: v2\nretries: 5\nmax-conns: 3\n")
	tests := []struct {
		command                      string
		bufferSize, retries, maxConn int
		proxy                        bool
	}{
		{"send", 64, 5, 0, true},
		{"bench", 128, 2, 0, true}, // echo.DefaultBufferSize
		{"ping", 128, 2, 0, false},
	}
	for _, tt := range tests {
		cfg := mustLoad(t, tt.command, "--config", path)
		if cfg.BufferSize != tt.bufferSize || cfg.Transport.Retries != tt.retries || cfg.MaxConns != tt.maxConn || (cfg.Transport.Proxy != nil) != tt.proxy {
			t.Errorf("%s: buffer-size %d, retries %d, max-conns %d, PROXY header %v; want %d, %d, %d, %v", tt.command,
				cfg.BufferSize, cfg.Transport.Retries, cfg.MaxConns, cfg.Transport.Proxy != nil, tt.bufferSize, tt.retries, tt.maxConn, tt.proxy)
		}
	}
	// Validated all the same.
	t.Setenv("ECHOCTL_BUFFER_SIZE", "0")
	if _, err := loadFor(t, "ping"); err == nil || !strings.Contains(err.Error(), "invalid buffer-size") {
		t.Errorf("ping with ECHOCTL_BUFFER_SIZE=0: %v, want invalid buffer-size", err)
	}
}

// TestProxyKeysValidatedByEveryCommand: the PROXY header's keys, which
// send and bench check together, are checked one by one by the commands
// that write no header, as every key is: ping and serve refused none.
func TestProxyKeysValidatedByEveryCommand(t *testing.T) {
	tests := []struct {
		env, value string
		commands   []string
		want       string // "" for none
	}{
		{"ECHOCTL_PROXY_PROTOCOL", "bogus", []string{"ping", "serve"}, `invalid proxy-protocol "bogus"`},
		{"ECHOCTL_PROXY_PROTOCOL", "on", []string{"ping", "serve"}, ""},
		{"ECHOCTL_PROXY_PROTOCOL", "v2", []string{"ping"}, ""},
		{"ECHOCTL_PROXY_SOURCE", "zzz", []string{"ping", "serve"}, `invalid proxy-source "zzz"`},
		{"ECHOCTL_PROXY_DEST", "zzz", []string{"ping", "serve"}, `invalid proxy-dest "zzz"`},
		{"ECHOCTL_PROXY_TLV", "zz=1", []string{"ping", "serve"}, `invalid proxy-tlv "zz=1"`},
		{"ECHOCTL_PROXY_TLV", "alpn=h2", []string{"ping", "serve"}, ""},
	}
	for _, tt := range tests {
		for _, command := range tt.commands {
			t.Run(command+" "+tt.env+"="+tt.value, func(t *testing.T) {
				isolate(t)
				t.Setenv(tt.env, tt.value)
				_, err := loadFor(t, command)
				if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
					t.Errorf("error %v, want %q", err, tt.want)
				}
			})
		}
	}
}

// TestExampleConfigFile: config/echoctl.yaml, which the packages install
// as /etc/echoctl/config.yaml, loads for every command and says what the
// defaults are: with allow: [] in it, every command on a machine with the
// package installed exited 2.
func TestExampleConfigFile(t *testing.T) {
	example, err := filepath.Abs(filepath.Join("..", "config", "echoctl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys { // "every key": set, or shown in a comment
		if strings.HasPrefix(k.name, faultPrefix) && strings.Contains(string(text), k.name) {
			continue // listed in the faults section's comment
		}
		if !regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(k.name) + `:`).Match(text) {
			t.Errorf("%s does not name the key %s", example, k.name)
		}
	}
	isolate(t) // in a directory of its own: before it, the path
	for _, command := range []string{"serve", "send", "bench", "ping"} {
		got, err := loadFor(t, command, "--config", example)
		if err != nil {
			t.Fatalf("%s --config %s: %v", command, example, err)
		}
		want := mustLoad(t, command)
		got.File, got.source, want.source = "", nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the example config differs from the defaults:\n got %+v\nwant %+v", command, got, want)
		}
	}
}

// TestDocsKeyCount: README.md and docs/configuration.md say how many keys
// there are; they said 45 and 26 when there were 48.
func TestDocsKeyCount(t *testing.T) {
	for _, d := range []struct{ file, pattern string }{
		{"README.md", `all (\d+), with defaults`},
		{"docs/configuration.md", `reads the (\d+) configuration keys`},
	} {
		text, err := os.ReadFile(filepath.Join("..", d.file))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(d.pattern).FindSubmatch(text)
		if m == nil {
			t.Errorf("%s does not say how many keys there are (%s)", d.file, d.pattern)
		} else if n, _ := strconv.Atoi(string(m[1])); n != len(keys) {
			t.Errorf("%s says %d keys; there are %d", d.file, n, len(keys))
		}
	}
}

// TestSharedFileKeysOtherCommands: one config file serves every command.
// What serve's keys say there (an allow list, a greeting naming a variable
// only the service's environment has) and send's (a PROXY v2 header with
// TLVs) is checked by the others, then ignored: it stops none of them.
func TestSharedFileKeysOtherCommands(t *testing.T) {
	for _, file := range []string{
		"allow: [127.0.0.1, 10.0.0.0/8]\n",
		"greeting: \"backend {hostname} {env:ECHOCTL_TEST_UNSET_ZONE}\"\n",
		"proxy-protocol: v2\nproxy-tlv: [alpn=h2]\n",
	} {
		path := writeFile(t, filepath.Join(isolate(t), "shared.yaml"), file)
		for _, cmd := range []string{"send", "ping", "bench"} {
			cfg, err := loadFor(t, cmd, "--config", path)
			if err != nil {
				t.Errorf("%s with %q: %v", cmd, file, err)
				continue
			}
			if cmd == "ping" && (cfg.Transport.Proxy != nil || len(cfg.Transport.ProxyTLVs) != 0) {
				t.Errorf("ping takes send's PROXY header: %+v", cfg.Transport)
			}
		}
	}
	// serve takes the greeting, whose variable is not set here.
	path := writeFile(t, filepath.Join(isolate(t), "shared.yaml"), "greeting: \"{env:ECHOCTL_TEST_UNSET_ZONE}\"\n")
	if _, err := loadFor(t, "serve", "--config", path); err == nil || !strings.Contains(err.Error(), "ECHOCTL_TEST_UNSET_ZONE is not set") {
		t.Errorf("serve: %v, want the greeting's unset variable refused", err)
	}
}

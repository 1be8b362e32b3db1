package cmd

import (
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
)

// TestLoadGreeting: the greeting key from each layer, off by default; a
// template that is not valid is a usage error (exit 2), naming the key,
// its source and what is wrong, on every command, as any key.
func TestLoadGreeting(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		file string // a YAML config file's content
		want string
	}{
		{name: "default off"},
		{name: "flag", args: []string{"--greeting", "backend {hostname} {env:ZONE}"}, env: map[string]string{"ZONE": "a"}, want: "backend {hostname} {env:ZONE}"},
		{name: "env", env: map[string]string{"ECHOCTL_GREETING": "{peer} via {via}"}, want: "{peer} via {via}"},
		{name: "file", file: "greeting: \"{{{listener}}}\"\n", want: "{{{listener}}}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"serve"}, tt.args...)
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, filepath.Join(dir, "c.yaml"), tt.file))
			}
			cfg := mustLoad(t, args...)
			if cfg.Greeting != tt.want {
				t.Errorf("Greeting = %q, want %q", cfg.Greeting, tt.want)
			}
			srv, _, err := newServer(cfg, zerolog.Nop(), nil)
			if err != nil || srv.Greeting != tt.want {
				t.Errorf("newServer: Greeting %q, %v; want %q", srv.Greeting, err, tt.want)
			}
		})
	}

	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown field", []string{"serve", "--greeting", "backend {host}"}, nil,
			`invalid greeting "backend {host}" from flag --greeting: unknown field {host} at byte 8 (fields: {hostname}, {listener}, {peer}, {peer-ip}, {via}, {proxy}, {env:NAME}; {{ and }} for braces)`},
		{"unclosed brace", []string{"serve"}, map[string]string{"ECHOCTL_GREETING": "{peer"},
			`invalid greeting "{peer" from environment ECHOCTL_GREETING: unclosed { at byte 0 (write {{ for a brace)`},
		{"unset variable", []string{"serve", "--greeting", "{env:ECHOCTL_TEST_NO_SUCH_VAR}"}, nil,
			`invalid greeting "{env:ECHOCTL_TEST_NO_SUCH_VAR}" from flag --greeting: {env:ECHOCTL_TEST_NO_SUCH_VAR}: ECHOCTL_TEST_NO_SUCH_VAR is not set`},
		{"two lines", []string{"serve", "--greeting", "one\ntwo"}, nil,
			`invalid greeting "one\ntwo" from flag --greeting: a line break at byte 3: a greeting is one line`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			checkUsageError(t, run(t, cancelledContext(), tt.args...), tt.want)
		})
	}

	t.Run("every command", func(t *testing.T) {
		isolate(t)
		t.Setenv("ECHOCTL_GREETING", "{bogus}")
		if _, err := loadFor(t, "send"); err == nil {
			t.Errorf("send with ECHOCTL_GREETING={bogus}: no error, want one (every command validates every key)")
		}
	})
}

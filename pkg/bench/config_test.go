package bench_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/bench"
)

// validConfig is a Config with every field set, as echoctl's flags set
// them, that Validate accepts.
func validConfig() bench.Config {
	return bench.Config{
		Addr:      "127.0.0.1:10000",
		Mode:      bench.ModePingPong,
		Conns:     bench.DefaultConns,
		Size:      bench.DefaultSize,
		Pipeline:  bench.DefaultPipeline,
		Chunk:     bench.DefaultChunk,
		Duration:  bench.DefaultDuration,
		Warmup:    time.Second,
		OpTimeout: bench.DefaultOpTimeout,
	}
}

// TestValidateFieldErrors: Validate checks a Config as it is, a zero
// count or duration included (Run would take it as the default), and
// names the field out of range in a *ConfigError that says what it must
// be; echoctl prints these words after "invalid --".
func TestValidateFieldErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*bench.Config)
		want   bench.ConfigError
	}{
		{"mode", func(c *bench.Config) { c.Mode = "x" },
			bench.ConfigError{Field: "mode", Value: `"x"`, Reason: "must be one of pingpong, stream, connrate, idle"}},
		{"empty mode", func(c *bench.Config) { c.Mode = "" },
			bench.ConfigError{Field: "mode", Value: `""`, Reason: "must be one of pingpong, stream, connrate, idle"}},
		{"conns zero", func(c *bench.Config) { c.Conns = 0 },
			bench.ConfigError{Field: "conns", Value: "0", Reason: "must be an integer from 1 to 1000000"}},
		{"conns too many", func(c *bench.Config) { c.Conns = bench.MaxConns + 1 },
			bench.ConfigError{Field: "conns", Value: "1000001", Reason: "must be an integer from 1 to 1000000"}},
		{"size zero", func(c *bench.Config) { c.Size = 0 },
			bench.ConfigError{Field: "size", Value: "0", Reason: "must be an integer from 1 to 16777216"}},
		{"pipeline", func(c *bench.Config) { c.Pipeline = -1 },
			bench.ConfigError{Field: "pipeline", Value: "-1", Reason: "must be an integer from 1 to 65536"}},
		{"chunk", func(c *bench.Config) { c.Chunk = bench.MaxSize + 1 },
			bench.ConfigError{Field: "chunk", Value: "16777217", Reason: "must be an integer from 1 to 16777216"}},
		{"duration zero", func(c *bench.Config) { c.Duration = 0 },
			bench.ConfigError{Field: "duration", Value: "0s", Reason: "must be a positive duration, such as 500ms, 10s or 1m"}},
		{"warmup negative", func(c *bench.Config) { c.Warmup = -time.Second },
			bench.ConfigError{Field: "warmup", Value: "-1s", Reason: "must be a duration of 0 or more, such as 500ms, 10s or 1m (0 for no warmup)"}},
		{"op timeout zero", func(c *bench.Config) { c.OpTimeout = 0 },
			bench.ConfigError{Field: "op-timeout", Value: "0s", Reason: "must be a positive duration, such as 500ms, 10s or 1m"}},
		{"server pid", func(c *bench.Config) { c.ServerPID = -1 },
			bench.ConfigError{Field: "server-pid", Value: "-1", Reason: "must be a process id"}},
		{"rate NaN", func(c *bench.Config) { c.Rate = math.NaN() },
			bench.ConfigError{Field: "rate", Value: "NaN", Reason: "must be messages per second, at most 1e+09, or 0 for as fast as the echoes come back"}},
		{"rate absurd", func(c *bench.Config) { c.Rate = 1e308 },
			bench.ConfigError{Field: "rate", Value: "1e+308", Reason: "must be messages per second, at most 1e+09, or 0 for as fast as the echoes come back"}},
		{"rate in idle mode", func(c *bench.Config) { c.Mode, c.Rate = bench.ModeIdle, 5 },
			bench.ConfigError{Field: "rate", With: "mode", WithValue: "idle", Reason: "only pingpong and connrate run on a schedule"}},
		{"duration too long", func(c *bench.Config) { c.Duration = 10001 * time.Hour },
			bench.ConfigError{Field: "duration", Value: "10001h", Reason: "must be at most 10000h"}},
		{"busy poll", func(c *bench.Config) { c.BusyPoll = time.Second },
			bench.ConfigError{Field: "busy-poll", Value: "1s", Reason: "must be from 0 to 100ms"}},
		{"rate too small for a message in the run", func(c *bench.Config) { c.Rate, c.Duration = 0.0001, time.Second },
			bench.ConfigError{Field: "rate", Value: "0.0001", With: "duration", WithValue: "1s",
				Reason: "sends no message in the measured duration: use a --rate of at least 1, or a longer --duration"}},
		{"rate too small to underflow", func(c *bench.Config) { c.Rate, c.Duration = 1e-300, time.Second },
			bench.ConfigError{Field: "rate", Value: "1e-300", With: "duration", WithValue: "1s",
				Reason: "sends no message in the measured duration: use a --rate of at least 1, or a longer --duration"}},
		{"rate too small for the run, several connections", func(c *bench.Config) { c.Conns, c.Rate, c.Duration = 7, 0.25, 3*time.Second },
			bench.ConfigError{Field: "rate", Value: "0.25", With: "duration", WithValue: "3s",
				Reason: "sends no message in the measured duration: use a --rate of at least 0.334, or a longer --duration"}},
		{"connrate rate too small", func(c *bench.Config) { c.Mode, c.Rate, c.Duration = bench.ModeConnRate, 0.5, time.Second },
			bench.ConfigError{Field: "rate", Value: "0.5", With: "duration", WithValue: "1s",
				Reason: "sends no cycle in the measured duration: use a --rate of at least 1, or a longer --duration"}},
		{"udp rate too small", func(c *bench.Config) { c.Addr, c.Size, c.Rate, c.Duration = "udp://127.0.0.1:7", 64, 0.5, time.Second },
			bench.ConfigError{Field: "rate", Value: "0.5", With: "duration", WithValue: "1s",
				Reason: "sends no datagram in the measured duration: use a --rate of at least 1, or a longer --duration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			var ce *bench.ConfigError
			if !errors.As(err, &ce) || *ce != tt.want {
				t.Fatalf("Validate() = %v, want %+v", err, tt.want)
			}
			if !errors.Is(err, bench.ErrInvalidConfig) {
				t.Errorf("Validate() = %v, does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

// TestValidate: what Validate accepts, and the errors that are not about
// one field's range.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*bench.Config)
		want   string // "" when valid
	}{
		{"every field set", func(*bench.Config) {}, ""},
		{"connrate with the seed's parts (nil)", func(c *bench.Config) { c.Mode = bench.ModeConnRate }, ""},
		{"connrate with no parts", func(c *bench.Config) { c.Mode, c.Parts = bench.ModeConnRate, []string{} }, "part: the parts must hold from 1"},
		{"connrate with empty parts", func(c *bench.Config) { c.Mode, c.Parts = bench.ModeConnRate, []string{"", ""} }, "part: the parts must hold from 1"},
		{"connrate with one part", func(c *bench.Config) { c.Mode, c.Parts = bench.ModeConnRate, []string{"whole"} }, ""},
		{"pingpong with parts", func(c *bench.Config) { c.Parts = []string{"x"} }, "part with mode pingpong: only connrate writes parts"},
		{"stream with parts", func(c *bench.Config) { c.Mode, c.Parts = bench.ModeStream, []string{"x"} }, "part with mode stream: only connrate writes parts"},
		{"warmup zero", func(c *bench.Config) { c.Warmup = 0 }, ""},
		{"rate of one message a connection in the run", func(c *bench.Config) { c.Conns, c.Rate, c.Duration = 3, 0.3, 10*time.Second }, ""},
		{"rate at which some connections send none, others measure", func(c *bench.Config) { c.Conns, c.Rate, c.Duration = 100, 50, time.Second }, ""},
		{"rate of one message in the run", func(c *bench.Config) { c.Rate, c.Duration = 1, time.Second }, ""},
		{"port 0", func(c *bench.Config) { c.Addr = "127.0.0.1:0" }, "port 0 cannot be connected to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (!errors.Is(err, bench.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want ErrInvalidConfig about %q", err, tt.want)
			}
		})
	}
}

func TestConfigErrorMessage(t *testing.T) {
	tests := []struct {
		err  bench.ConfigError
		want string
	}{
		{bench.ConfigError{Field: "conns", Value: "0", Reason: "must be an integer from 1 to 1000000"},
			"bench: invalid configuration: conns 0: must be an integer from 1 to 1000000"},
		{bench.ConfigError{Field: "rate", With: "mode", WithValue: "stream", Reason: "only pingpong and connrate run on a schedule"},
			"bench: invalid configuration: rate with mode stream: only pingpong and connrate run on a schedule"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

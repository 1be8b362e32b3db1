package cmd

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestFaultKeys: the fault-* keys come from flags, the environment and the
// config file, flat or in a faults section (in every format), all parsed
// by echo.Faults.Set; serve's Server gets them, and none without a fault.
func TestFaultKeys(t *testing.T) {
	want := []string{"delay=50ms", "jitter=10ms", "close-after=1KiB", "corrupt=0.01", "share=0.5"}
	t.Run("flags and environment", func(t *testing.T) {
		isolate(t)
		t.Setenv("ECHOCTL_FAULT_JITTER", "10ms")
		cfg := mustLoad(t, "serve", "--fault-delay", "50ms", "--fault-close-after", "1024", "--fault-corrupt", "1%", "--fault-share", "0.5")
		if got := cfg.Faults.Settings(); !slices.Equal(got, want) {
			t.Errorf("faults %q, want %q", got, want)
		}
	})
	files := map[string]string{
		"yaml": "fault-share: 0.5\nfaults:\n  delay: 50ms\n  jitter: 10ms\n  close-after: 1024\n  corrupt: 0.01\n",
		"toml": "fault-share = \"0.5\"\n[faults]\ndelay = \"50ms\"\njitter = \"10ms\"\nclose-after = 1024\ncorrupt = 0.01\n",
		"json": `{"fault-share": 0.5, "faults": {"delay": "50ms", "jitter": "10ms", "close-after": 1024, "corrupt": 0.01}}`,
	}
	for _, format := range configFormats {
		t.Run("faults section in "+format, func(t *testing.T) {
			dir := isolate(t)
			content := files[format]
			path := writeFile(t, filepath.Join(dir, "config."+format), content)
			cfg := mustLoad(t, "serve", "--config", path)
			if got := cfg.Faults.Settings(); !slices.Equal(got, want) {
				t.Errorf("faults %q, want %q (file:\n%s)", got, want, content)
			}
		})
	}
	t.Run("no fault: no Faults on the Server", func(t *testing.T) {
		isolate(t)
		srv, _, err := newServer(mustLoad(t, "serve", "--fault-share", "0.5"), zerolog.Nop(), nil)
		if err != nil || srv.Faults != nil {
			t.Errorf("newServer: Faults %+v, %v; want nil", srv.Faults, err)
		}
		srv, _, err = newServer(mustLoad(t, "serve", "--fault-refuse", "0.1"), zerolog.Nop(), nil)
		if err != nil || srv.Faults == nil || srv.Faults.Refuse != 0.1 {
			t.Errorf("newServer with --fault-refuse 0.1: Faults %+v, %v", srv.Faults, err)
		}
	})
	t.Run("a config file: Faults set, for SIGHUP", func(t *testing.T) {
		dir := isolate(t)
		path := writeFile(t, filepath.Join(dir, "c.yaml"), "log-level: info\n")
		srv, _, err := newServer(mustLoad(t, "serve", "--config", path), zerolog.Nop(), nil)
		if err != nil || srv.Faults == nil || srv.Faults.Enabled() {
			t.Errorf("newServer with a config file: Faults %+v, %v; want a zero Faults", srv.Faults, err)
		}
	})
}

// TestFaultKeysInvalid: a bad fault setting is a usage error naming the
// key, the value and where it came from.
func TestFaultKeysInvalid(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		file    string
		wantErr string
	}{
		{"flag", []string{"--fault-delay", "soon"}, "",
			`echoctl: invalid fault-delay "soon" from flag --fault-delay: "soon" is not a duration from 0 to 10000h (50ms, 2s)`},
		{"probability", []string{"--fault-corrupt", "2"}, "",
			`echoctl: invalid fault-corrupt "2" from flag --fault-corrupt: "2" is not a probability from 0 to 1 (0.01 or 1%)`},
		{"section key", nil, "faults:\n  latency: 50ms\n",
			`unknown key "latency" in the faults section (fault keys: delay, jitter, rate, slice, slice-delay, close-after, reset-after, stall-after, corrupt, refuse, drop, duplicate, reorder, share)`},
		{"set twice", nil, "fault-delay: 1s\nfaults:\n  delay: 50ms\n",
			"delay is set twice, in the faults section and as fault-delay"},
		{"section not a table", nil, "faults: 50ms\n", "faults must be a table of fault keys and values"},
		{"section value", nil, "faults:\n  reset-after: soon\n",
			`invalid fault-reset-after "soon" from config file`},
		{"a list", nil, "fault-corrupt: [0.1]\n",
			`: must be one value, not a list or a table`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			args := append([]string{"serve", "--addr", "127.0.0.1:0"}, tt.args...)
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, filepath.Join(dir, "c.yaml"), tt.file))
			}
			r := run(t, cancelledContext(), args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.wantErr) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d and one line holding %q", r.code, r.stderr, ExitUsage, tt.wantErr)
			}
		})
	}
}

// TestServeLogsFaults: serve lists its faults in one line at start-up, and
// none when it has none.
func TestServeLogsFaults(t *testing.T) {
	isolate(t)
	p := startServe(t, "--fault-delay", "50ms", "--fault-jitter", "10ms", "--fault-reset-after", "64KiB")
	if !hasLogLine(jsonLines(t, p.stderr.String()), "main", "faults on every listener: delay=50ms jitter=10ms reset-after=64KiB") {
		t.Errorf("no faults line at start-up:\n%s", p.stderr)
	}
	plain := startServe(t)
	if s := plain.stderr.String(); strings.Contains(s, "fault") {
		t.Errorf("a server without faults mentions them:\n%s", s)
	}
}

// TestServeFaultsPerListener: one serve, a clean port and a faulty one
// whose address query sets a fault; the start-up line of the faulty one
// shows its keys, and only its connections are faulted.
func TestServeFaultsPerListener(t *testing.T) {
	isolate(t)
	p, bound := startServeAddrs(t, []string{"tcp://127.0.0.1:0", "tcp://127.0.0.2:0?fault-reset-after=2"})
	clean, faulty := bound[0], bound[1]
	if !hasLogField(jsonLines(t, p.stderr.String()), "options", "fault-reset-after=2") {
		t.Errorf("no start-up line with options fault-reset-after=2:\n%s", p.stderr)
	}
	for _, tc := range []struct {
		addr  string
		reset bool
	}{{clean, false}, {faulty, true}} {
		c, err := net.DialTimeout("tcp", tc.addr, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(waitTimeout))
		c.Write([]byte("abcd"))
		got := make([]byte, 4)
		n, err := io.ReadFull(c, got)
		reset := errors.Is(err, syscall.ECONNRESET)
		c.Close()
		if tc.reset != reset || (!tc.reset && string(got[:n]) != "abcd") || (tc.reset && n > 2) {
			t.Errorf("%s: read %q, %v; want reset %v", tc.addr, got[:n], err, tc.reset)
		}
	}
}

// hasLogField reports whether a line holds field with value.
func hasLogField(lines []map[string]any, field, value string) bool {
	for _, l := range lines {
		if l[field] == value {
			return true
		}
	}
	return false
}

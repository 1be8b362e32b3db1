package main_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The messages the config files in these tests set; the first is longer
// than every buffer size tested, so the largest chunk read shows the size.
var fileMessages = []string{"The quick brown fox ", "jumps over the lazy dog."}

// TestConfigPrecedence checks flags > environment > config file > defaults
// through the binary, on buffer-size and messages. The buffer size is
// observed on both sides: the largest chunk in the server's -v transcript
// ("received b'...'") and in the client's debug "received" lines.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789", 30) // 300 bytes: more than the default 128
	yaml := "buffer-size: 7\nmessages: [\"" + fileMessages[0] + "\", \"" + fileMessages[1] + "\"]\n"

	tests := []struct {
		name     string
		file     string   // ./echoctl.yaml, found by the search path; "" for none
		env      []string // for both serve and send
		flags    []string // for both serve and send
		args     []string // MESSAGE arguments to send
		wantOut  string
		wantSize int
	}{
		{name: "defaults", args: []string{long}, wantOut: long, wantSize: 128},
		{name: "config file", file: yaml, wantOut: strings.Join(fileMessages, ""), wantSize: 7},
		{name: "env over config file", file: yaml, env: []string{"ECHOCTL_BUFFER_SIZE=5"}, wantOut: strings.Join(fileMessages, ""), wantSize: 5},
		{name: "flag over env", file: yaml, env: []string{"ECHOCTL_BUFFER_SIZE=5"}, flags: []string{"--buffer-size", "3"}, wantOut: strings.Join(fileMessages, ""), wantSize: 3},
		{name: "flag over config file", file: yaml, flags: []string{"--buffer-size=4"}, wantOut: strings.Join(fileMessages, ""), wantSize: 4},
		{name: "env over default", env: []string{"ECHOCTL_BUFFER_SIZE=6"}, args: []string{long}, wantOut: long, wantSize: 6},
		{name: "env messages over config file", file: yaml, env: []string{`ECHOCTL_MESSAGES=["x-ray yankee ", "zulu"]`}, wantOut: "x-ray yankee zulu", wantSize: 7},
		{name: "env message not a list", env: []string{"ECHOCTL_MESSAGES=just one message"}, wantOut: "just one message", wantSize: 0},
		{name: "args over env and config file", file: yaml, env: []string{`ECHOCTL_MESSAGES=["x-ray yankee ", "zulu"]`}, args: []string{"alpha bravo ", "charlie"}, wantOut: "alpha bravo charlie", wantSize: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tt.file != "" {
				writeFile(t, dir, "echoctl.yaml", tt.file)
			}
			s := spec{Env: tt.env, Dir: dir}
			srv := startServer(t, s, "127.0.0.1", append([]string{"-v"}, tt.flags...)...)

			args := append(append([]string{"send", "-v", "--addr", srv.Addr()}, tt.flags...), tt.args...)
			r := echoctl(t, s, args...)
			if r.Code != 0 {
				t.Fatalf("send: want exit 0:\n%s", r)
			}
			if string(r.Stdout) != tt.wantOut {
				t.Errorf("stdout = %q, want %q", r.Stdout, tt.wantOut)
			}
			clientChunks := dataChunks(t, r.Lines(), "echo_client", "received")
			if got := string(joinChunks(clientChunks)); got != tt.wantOut {
				t.Errorf("client received lines add up to %q, want %q", got, tt.wantOut)
			}

			srv.WaitLine(reLine(`^echo_127\.0\.0\.1_\d+: closing$`), readyTimeout)
			serverChunks := dataChunks(t, srv.Lines(), "", "received")
			if got := string(joinChunks(serverChunks)); got != tt.wantOut {
				t.Errorf("server received lines add up to %q, want %q\n%s", got, tt.wantOut, srv.Stderr)
			}
			if tt.wantSize == 0 {
				return
			}
			if got := maxLen(clientChunks); got != tt.wantSize {
				t.Errorf("client: largest chunk received is %d bytes, want buffer size %d:\n%s", got, tt.wantSize, r.Stderr)
			}
			if got := maxLen(serverChunks); got != tt.wantSize {
				t.Errorf("server: largest chunk received is %d bytes, want buffer size %d:\n%s", got, tt.wantSize, srv.Stderr)
			}
		})
	}
}

// TestConfigLogLevelPrecedence: log-level from file, env and flag, and -v.
func TestConfigLogLevelPrecedence(t *testing.T) {
	t.Parallel()
	srv := startServer(t, spec{}, "127.0.0.1")
	tests := []struct {
		name  string
		file  string
		env   []string
		flags []string
		want  string // "none", "info" (no data lines) or "debug" (data lines)
	}{
		{"default is info", "", nil, nil, "info"},
		{"config file warn", "log-level: warn\n", nil, nil, "none"},
		{"env over config file", "log-level: warn\n", []string{"ECHOCTL_LOG_LEVEL=debug"}, nil, "debug"},
		{"flag over env", "log-level: warn\n", []string{"ECHOCTL_LOG_LEVEL=debug"}, []string{"--log-level", "info"}, "info"},
		{"-v over env and file", "log-level: warn\n", []string{"ECHOCTL_LOG_LEVEL=error"}, []string{"-v"}, "debug"},
		{"-v with --log-level debug", "", nil, []string{"--log-level", "debug", "-v"}, "debug"},
		{"disabled", "", []string{"ECHOCTL_LOG_LEVEL=disabled"}, nil, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tt.file != "" {
				writeFile(t, dir, "echoctl.yaml", tt.file)
			}
			r := echoctl(t, spec{Env: tt.env, Dir: dir}, append([]string{"send", "--addr", srv.Addr()}, tt.flags...)...)
			if r.Code != 0 || string(r.Stdout) != seedEcho {
				t.Fatalf("want exit 0 and the seed's echo:\n%s", r)
			}
			lines := r.Lines()
			hasInfo := count(lines, "echo_client: waiting for response") == 1
			hasDebug := len(dataChunks(t, lines, "echo_client", "received")) > 0
			var got string
			switch {
			case len(lines) == 0:
				got = "none"
			case hasDebug && hasInfo:
				got = "debug"
			case hasInfo:
				got = "info"
			default:
				got = "unexpected"
			}
			if got != tt.want {
				t.Errorf("logged at %s, want %s:\n%s", got, tt.want, r.Stderr)
			}
		})
	}
}

// TestConfigFiles: YAML, TOML and JSON config files, found on the search
// path (./echoctl.yaml, $XDG_CONFIG_HOME/echoctl/config.yaml,
// $HOME/.config/echoctl/config.yaml) or named by --config or
// ECHOCTL_CONFIG. Each sets addr, buffer-size 7 and two messages; send
// gets no flags but -v, so a run that exits 0 with the expected output
// and 7-byte chunks read them all from the file.
func TestConfigFiles(t *testing.T) {
	t.Parallel()
	// The server reads big chunks, so that the client's chunks show the
	// client's buffer size.
	srv := startServer(t, spec{}, "127.0.0.1", "--buffer-size", "65536")
	addr := srv.Addr()
	m0, m1 := fileMessages[0], fileMessages[1]
	yaml := fmt.Sprintf("# echoctl config\naddr: %q\nbuffer-size: 7\nmessages:\n  - %q\n  - %q\n", addr, m0, m1)
	toml := fmt.Sprintf("# echoctl config\naddr = %q\nbuffer-size = 7\nmessages = [%q, %q]\n", addr, m0, m1)
	json := fmt.Sprintf(`{"addr": %q, "buffer-size": 7, "messages": [%q, %q]}`, addr, m0, m1)
	decoy := "addr: \"127.0.0.1:1\"\nbuffer-size: 99\nmessages: [\"wrong file\"]\n"

	tests := []struct {
		name  string
		files map[string]string // relative to the case's root: cwd/, xdg/, home/
		env   func(root string) []string
		flags func(root string) []string
	}{
		{name: "yaml in working directory", files: map[string]string{"cwd/echoctl.yaml": yaml}},
		{name: "yml in working directory", files: map[string]string{"cwd/echoctl.yml": yaml}},
		{name: "toml in working directory", files: map[string]string{"cwd/echoctl.toml": toml}},
		{name: "json in working directory", files: map[string]string{"cwd/echoctl.json": json}},
		{
			name:  "XDG_CONFIG_HOME",
			files: map[string]string{"xdg/echoctl/config.yaml": yaml},
			env:   func(root string) []string { return []string{"XDG_CONFIG_HOME=" + filepath.Join(root, "xdg")} },
		},
		{
			name:  "HOME/.config without XDG_CONFIG_HOME",
			files: map[string]string{"home/.config/echoctl/config.yaml": yaml},
			env: func(root string) []string {
				return []string{"XDG_CONFIG_HOME=", "HOME=" + filepath.Join(root, "home")}
			},
		},
		{
			name:  "working directory before XDG_CONFIG_HOME",
			files: map[string]string{"cwd/echoctl.yaml": yaml, "xdg/echoctl/config.yaml": decoy},
			env:   func(root string) []string { return []string{"XDG_CONFIG_HOME=" + filepath.Join(root, "xdg")} },
		},
		{
			name:  "--config toml over the search path",
			files: map[string]string{"cwd/echoctl.yaml": decoy, "elsewhere/settings.toml": toml},
			flags: func(root string) []string {
				return []string{"--config", filepath.Join(root, "elsewhere/settings.toml")}
			},
		},
		{
			name:  "--config json",
			files: map[string]string{"elsewhere/settings.json": json},
			flags: func(root string) []string {
				return []string{"--config", filepath.Join(root, "elsewhere/settings.json")}
			},
		},
		{
			name:  "ECHOCTL_CONFIG",
			files: map[string]string{"cwd/echoctl.yaml": decoy, "elsewhere/c.json": json},
			env: func(root string) []string {
				return []string{"ECHOCTL_CONFIG=" + filepath.Join(root, "elsewhere/c.json")}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeFile(t, root, "cwd/.keep", "")
			for name, content := range tt.files {
				writeFile(t, root, name, content)
			}
			s := spec{Dir: filepath.Join(root, "cwd")}
			if tt.env != nil {
				s.Env = tt.env(root)
			}
			args := []string{"send", "-v"}
			if tt.flags != nil {
				args = append(args, tt.flags(root)...)
			}
			r := echoctl(t, s, args...)
			if r.Code != 0 {
				t.Fatalf("want exit 0:\n%s", r)
			}
			if want := m0 + m1; string(r.Stdout) != want {
				t.Errorf("stdout = %q, want %q", r.Stdout, want)
			}
			if want := fmt.Sprintf("echo_client: connecting to 127.0.0.1 port %d", srv.Port); r.Lines()[0] != want {
				t.Errorf("first line = %q, want %q", r.Lines()[0], want)
			}
			if got := maxLen(dataChunks(t, r.Lines(), "echo_client", "received")); got != 7 {
				t.Errorf("largest chunk received is %d bytes, want the file's buffer-size 7:\n%s", got, r.Stderr)
			}
		})
	}
}

func joinChunks(chunks [][]byte) []byte {
	var b []byte
	for _, c := range chunks {
		b = append(b, c...)
	}
	return b
}

package main_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const logMessage = "hello, 'world'\n"

// acceptedRE finds the per-connection logger name in a log line.
var acceptedRE = regexp.MustCompile(`(echo_127\.0\.0\.1_(\d+)):? connection accepted`)

// TestLogFormatText: every line is exactly "name: message", and a whole
// exchange reads like the seed's transcript.
func TestLogFormatText(t *testing.T) {
	t.Parallel()
	srv := startServer(t, spec{}, "127.0.0.1", "-v", "--log-format", "text")
	r := echoctl(t, spec{}, "send", "-v", "--log-format", "text", "--addr", srv.Addr(), logMessage)
	if r.Code != 0 || string(r.Stdout) != logMessage {
		t.Fatalf("want exit 0 and the echo:\n%s", r)
	}
	q := pyQuote([]byte(logMessage))

	// The client: the seed's lines, in the seed's order, except that the
	// echo may already be received when "waiting for response" is logged,
	// because echoctl reads and writes concurrently.
	clientWant := []string{
		fmt.Sprintf("echo_client: connecting to 127.0.0.1 port %d", srv.Port),
		"echo_client: sending " + q,
		"echo_client: waiting for response",
		"echo_client: received " + q,
		"echo_client: closing",
	}
	got := r.Lines()
	if len(got) == 5 && got[2] == clientWant[3] && got[3] == clientWant[2] {
		got[2], got[3] = got[3], got[2]
	}
	if !slices.Equal(got, clientWant) {
		t.Errorf("client stderr:\n%s\nwant:\n%s", strings.Join(r.Lines(), "\n"), strings.Join(clientWant, "\n"))
	}

	srv.WaitLine(reLine(`: closing$`), readyTimeout)
	if code := srv.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	lines := srv.Lines()
	m := acceptedRE.FindStringSubmatch(strings.Join(lines, "\n"))
	if m == nil {
		t.Fatalf("no connection accepted line:\n%s", srv.Stderr)
	}
	name := m[1]
	serverWant := []string{
		fmt.Sprintf("main: starting up on 127.0.0.1 port %d", srv.Port),
		name + ": connection accepted",
		name + ": received " + q,
		name + ": sent " + q,
		name + ": closing",
		"main: closing server",
	}
	if !slices.Equal(lines, serverWant) {
		t.Errorf("server stderr:\n%s\nwant:\n%s", srv.Stderr, strings.Join(serverWant, "\n"))
	}
	textRE := regexp.MustCompile(`^(main|echo_client|echo_[0-9a-f.:]+_\d+): \S.*$`)
	for _, l := range append(lines, r.Lines()...) {
		if !textRE.MatchString(l) {
			t.Errorf("line %q is not 'name: message'", l)
		}
	}
}

// TestLogFormatJSON: every line is a JSON object with logger, level, time
// and message; data lines carry bytes, and on the server peer.
func TestLogFormatJSON(t *testing.T) {
	t.Parallel()
	srv := startServer(t, spec{}, "127.0.0.1", "-v", "--log-format", "json")
	r := echoctl(t, spec{}, "send", "-v", "--log-format", "json", "--addr", srv.Addr(), logMessage)
	if r.Code != 0 || string(r.Stdout) != logMessage {
		t.Fatalf("want exit 0 and the echo:\n%s", r)
	}
	srv.WaitLine(reLine(`"message":"closing"`), readyTimeout)
	if code := srv.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exit %d", code)
	}

	type event = map[string]any
	parse := func(who string, lines []string) []event {
		var evs []event
		for _, l := range lines {
			var e event
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Errorf("%s: line is not JSON: %q: %v", who, l, err)
				continue
			}
			for _, k := range []string{"logger", "level", "time", "message"} {
				if _, ok := e[k].(string); !ok {
					t.Errorf("%s: line has no string %q: %s", who, k, l)
				}
			}
			if lvl, _ := e["level"].(string); !slices.Contains([]string{"debug", "info", "warn", "error"}, lvl) {
				t.Errorf("%s: level %q in %s", who, lvl, l)
			}
			if ts, _ := e["time"].(string); ts != "" {
				tm, err := time.Parse(time.RFC3339, ts)
				if err != nil || time.Since(tm) > time.Hour || time.Until(tm) > time.Hour {
					t.Errorf("%s: time %q is not a current RFC 3339 time (%v)", who, ts, err)
				}
			}
			evs = append(evs, e)
		}
		return evs
	}

	// The server's first line says where it listens, in the message and in
	// the listeners array.
	sevs := parse("server", srv.Lines())
	if len(sevs) < 6 {
		t.Fatalf("server logged %d lines, want at least 6:\n%s", len(sevs), srv.Stderr)
	}
	first := sevs[0]
	if first["logger"] != "main" || first["message"] != fmt.Sprintf("starting up on 127.0.0.1 port %d", srv.Port) {
		t.Errorf("first server line: %v", first)
	}
	if ls, ok := first["listeners"].([]any); !ok || len(ls) != 1 || ls[0] != srv.Addr() {
		t.Errorf("listeners = %v, want [%q]", first["listeners"], srv.Addr())
	}
	if last := sevs[len(sevs)-1]; last["logger"] != "main" || last["message"] != "closing server" {
		t.Errorf("last server line: %v, want main: closing server", last)
	}

	checkData := func(who string, evs []event, wantPeer bool) (verbs []string) {
		for _, e := range evs {
			msg, _ := e["message"].(string)
			verb, lit, ok := strings.Cut(msg, " b")
			if !ok || !slices.Contains([]string{"received", "sent", "sending"}, verb) {
				continue
			}
			verbs = append(verbs, verb)
			data, err := pyUnquote("b" + lit)
			if err != nil {
				t.Errorf("%s: %v", who, err)
				continue
			}
			if e["level"] != "debug" {
				t.Errorf("%s: data line at level %v, want debug", who, e["level"])
			}
			if n, ok := e["bytes"].(float64); !ok || int(n) != len(data) {
				t.Errorf("%s: bytes = %v, want %d: %v", who, e["bytes"], len(data), e)
			}
			if wantPeer {
				logger, _ := e["logger"].(string)
				peer, _ := e["peer"].(string)
				port := strings.TrimPrefix(logger, "echo_127.0.0.1_")
				if _, err := strconv.Atoi(port); err != nil || peer != "127.0.0.1:"+port {
					t.Errorf("%s: peer = %q with logger %q, want 127.0.0.1:PORT matching the logger name", who, peer, logger)
				}
			}
		}
		return verbs
	}
	if verbs := checkData("server", sevs, true); !slices.Equal(verbs, []string{"received", "sent"}) {
		t.Errorf("server data lines: %v, want [received sent]", verbs)
	}
	cevs := parse("client", r.Lines())
	if verbs := checkData("client", cevs, false); !slices.Equal(verbs, []string{"sending", "received"}) {
		t.Errorf("client data lines: %v, want [sending received]", verbs)
	}
	for _, e := range cevs {
		if e["logger"] != "echo_client" {
			t.Errorf("client line with logger %v", e["logger"])
		}
	}
}

// TestLogFormatConsole: every line has a time, a level and the logger name.
func TestLogFormatConsole(t *testing.T) {
	t.Parallel()
	srv := startServer(t, spec{}, "127.0.0.1", "-v", "--log-format", "console")
	r := echoctl(t, spec{}, "send", "-v", "--log-format", "console", "--addr", srv.Addr(), "ping")
	if r.Code != 0 || string(r.Stdout) != "ping" {
		t.Fatalf("want exit 0 and the echo:\n%s", r)
	}
	srv.WaitLine(reLine(` closing`), readyTimeout)
	if code := srv.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	lineRE := regexp.MustCompile(`^(\S+) (DBG|INF|WRN|ERR) (main|echo_client|echo_127\.0\.0\.1_\d+): (.*)$`)
	check := func(who string, lines []string, want []string) {
		var msgs []string
		for _, l := range lines {
			if strings.Contains(l, "\x1b[") {
				t.Errorf("%s: colour escape in %q (stderr is not a terminal)", who, l)
			}
			m := lineRE.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("%s: line %q is not 'TIME LEVEL logger: message'", who, l)
				continue
			}
			if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
				t.Errorf("%s: time %q: %v", who, m[1], err)
			}
			msgs = append(msgs, m[2]+" "+m[3]+": "+m[4])
		}
		for _, w := range want {
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, w) }) {
				t.Errorf("%s: no line starting %q in:\n%s", who, w, strings.Join(lines, "\n"))
			}
		}
	}
	check("server", srv.Lines(), []string{
		fmt.Sprintf("INF main: starting up on 127.0.0.1 port %d", srv.Port),
		"INF echo_127.0.0.1_",
		"DBG echo_127.0.0.1_",
		"INF main: closing server",
	})
	check("client", r.Lines(), []string{
		fmt.Sprintf("INF echo_client: connecting to 127.0.0.1 port %d", srv.Port),
		"DBG echo_client: sending b'ping'",
		"DBG echo_client: received b'ping'",
		"INF echo_client: closing",
	})
}

package echo

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// testGreetingEnv is a host name and environment for the tests.
var testGreetingEnv = greetingEnv{
	hostname: func() (string, error) { return "h1", nil },
	lookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{"ZONE": "z-a", "EMPTY": "", "NL": "a\nb", "BIG": strings.Repeat("x", MaxGreeting)}[k]
		return v, ok
	},
}

func TestParseGreeting(t *testing.T) {
	text := func(s string) greetPart { return greetPart{text: s} }
	tests := []struct {
		tmpl  string
		parts []greetPart
		err   string // a part of the error; "" for none
	}{
		{tmpl: "hello", parts: []greetPart{text("hello")}},
		{tmpl: "hello\n", parts: []greetPart{text("hello")}},
		{tmpl: "\n", parts: nil},
		{tmpl: "{{literal}} and }}", parts: []greetPart{text("{literal} and }")}},
		{tmpl: "{{{peer}}}", parts: []greetPart{text("{"), {field: greetPeer}, text("}")}},
		{tmpl: "backend {hostname} {env:ZONE}", parts: []greetPart{text("backend "), {field: greetHostname}, text(" "), {field: greetEnv, text: "ZONE"}}},
		{tmpl: "{listener}{peer}{via}{proxy}", parts: []greetPart{{field: greetListener}, {field: greetPeer}, {field: greetVia}, {field: greetProxy}}},
		{tmpl: "{env:_x9}", parts: []greetPart{{field: greetEnv, text: "_x9"}}},
		{tmpl: "café ☕ {peer}", parts: []greetPart{text("café ☕ "), {field: greetPeer}}},
		{tmpl: "{bogus}", err: "unknown field {bogus} at byte 0 (fields: {hostname}"},
		{tmpl: "x {}", err: "unknown field {} at byte 2"},
		{tmpl: "{Peer}", err: "unknown field {Peer}"},
		{tmpl: "{ peer }", err: "unknown field { peer }"},
		{tmpl: "a {peer", err: "unclosed { at byte 2 (write {{ for a brace)"},
		{tmpl: "{", err: "unclosed { at byte 0"},
		{tmpl: "a } b", err: "a lone } at byte 2 (write }} for a brace)"},
		{tmpl: "{peer}}", err: "a lone } at byte 6"},
		{tmpl: "{env:}", err: `{env:} at byte 0: "" is not a variable name`},
		{tmpl: "{env:9A}", err: `"9A" is not a variable name`},
		{tmpl: "{env:A-B}", err: `"A-B" is not a variable name`},
		{tmpl: "one\ntwo", err: "a line break at byte 3: a greeting is one line"},
		{tmpl: "one\r\n", err: "a line break at byte 3"},
		{tmpl: "two\n\n", err: "a line break at byte 3"},
		{tmpl: "{pe\ner}", err: "a line break at byte 3"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			parts, err := parseGreeting(tt.tmpl)
			if tt.err != "" {
				if err == nil || !errors.Is(err, ErrInvalidGreeting) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseGreeting(%q) = %v, want an ErrInvalidGreeting saying %q", tt.tmpl, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(parts, tt.parts) {
				t.Fatalf("parseGreeting(%q) = %+v, %v; want %+v", tt.tmpl, parts, err, tt.parts)
			}
		})
	}
}

// TestGreetingLine: the fixed fields are read once, at start; the fields
// that vary are the connection's, kept on one line, and the line is cut
// to MaxGreeting with its newline.
func TestGreetingLine(t *testing.T) {
	c := &conn{peer: "127.0.0.1:41000", connGuard: connGuard{lconf: &listenerConf{name: "127.0.0.1:9000"}}}
	tests := []struct {
		name, tmpl string
		conn       *conn
		want       string // the line; "" when an error is wanted
		err        string
		here       bool // the error is this machine's (ErrGreetingEnvironment)
	}{
		{name: "every field", tmpl: "b {hostname} {env:ZONE}{env:EMPTY} {listener} {peer} [{via}] {proxy}",
			want: "b h1 z-a 127.0.0.1:9000 127.0.0.1:41000 [] none\n"},
		{name: "newline kept once", tmpl: "{peer}\n", want: "127.0.0.1:41000\n"},
		{name: "peer-ip", tmpl: "{peer-ip}", want: "127.0.0.1\n"},
		{name: "peer-ip of an IPv6 peer", tmpl: "{peer-ip}", conn: &conn{peer: "[::1]:41000"}, want: "::1\n"},
		{name: "peer-ip of a Unix socket", tmpl: "{peer-ip}", conn: &conn{peer: "/tmp/e.sock"}, want: "/tmp/e.sock\n"},
		{name: "a path with a line break", tmpl: "{peer}",
			conn: &conn{peer: "/tmp/a\nb\x7f.sock"}, want: `/tmp/a\x0ab\x7f.sock` + "\n"},
		{name: "fixed part at the bound", tmpl: strings.Repeat("y", MaxGreeting-1), want: strings.Repeat("y", MaxGreeting-1) + "\n"},
		{name: "fixed part past the bound", tmpl: strings.Repeat("y", MaxGreeting), err: "1025 bytes with its newline, more than 1024"},
		{name: "variable past the bound", tmpl: "{env:BIG}", err: "more than 1024"},
		{name: "varying fields cut", tmpl: strings.Repeat("y", MaxGreeting-8) + "{peer}",
			want: strings.Repeat("y", MaxGreeting-8) + "127.0.0\n"},
		{name: "cut between runes", tmpl: strings.Repeat("y", MaxGreeting-3) + "{peer}",
			conn: &conn{peer: "☕☕"}, want: strings.Repeat("y", MaxGreeting-3) + "\n"},
		{name: "unset variable", tmpl: "{env:NOPE}", err: "{env:NOPE}: NOPE is not set", here: true},
		{name: "variable with a line break", tmpl: "{env:NL}", err: "{env:NL} holds a line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := newGreetingStage(tt.tmpl, testGreetingEnv)
			if tt.err != "" {
				if !errors.Is(err, ErrInvalidGreeting) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("newGreetingStage = %v, want an error saying %q", err, tt.err)
				}
				if errors.Is(err, ErrGreetingEnvironment) != tt.here {
					t.Errorf("errors.Is(%v, ErrGreetingEnvironment) = %v", err, !tt.here)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cc := c
			if tt.conn != nil {
				cc = tt.conn
			}
			if got := string(g.line(cc)); got != tt.want {
				t.Errorf("line = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestGreetingOffByDefault: a Server without a Greeting has no stage, so
// its connections take the plain echo's path.
func TestGreetingOffByDefault(t *testing.T) {
	var s Server
	if err := s.validate(); err != nil || s.stages != nil {
		t.Fatalf("validate = %v, stages %v; want no stage", err, s.stages)
	}
	s2 := Server{Greeting: "{hostname}"}
	s2.greeting.env = &testGreetingEnv
	for range 2 { // once, however many listeners
		if err := s2.validate(); err != nil || s2.stages == nil || len(s2.stages.open) != 1 {
			t.Fatalf("validate = %v, stages %+v; want one open stage", err, s2.stages)
		}
	}
}

// FuzzParseGreeting: a template that parses expands to one line of at
// most MaxGreeting bytes, or is refused with one line; text escaped with
// {{ and }} parses back to itself.
func FuzzParseGreeting(f *testing.F) {
	for _, s := range []string{"", "backend {hostname} {env:ZONE}", "{{x}}", "{peer", "}", "{env:9}", "a\nb", "{proxy}{via}\n", "☕{listener}"} {
		f.Add(s)
	}
	c := &conn{peer: "[::1]:1\n", connGuard: connGuard{lconf: &listenerConf{name: "/tmp/\x00"}}}
	f.Fuzz(func(t *testing.T, tmpl string) {
		g, err := newGreetingStage(tmpl, testGreetingEnv)
		if err != nil {
			if !errors.Is(err, ErrInvalidGreeting) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line wrapping ErrInvalidGreeting", err)
			}
		} else {
			line := g.line(c)
			if len(line) > MaxGreeting || strings.IndexAny(string(line), "\r\n") != len(line)-1 {
				t.Fatalf("line %q: want one line of at most %d bytes", line, MaxGreeting)
			}
			if utf8.ValidString(tmpl) && !utf8.Valid(line) {
				t.Fatalf("line %q from a valid UTF-8 template is not", line)
			}
		}
		text := strings.NewReplacer("\n", "", "\r", "").Replace(tmpl)
		escaped := strings.NewReplacer("{", "{{", "}", "}}").Replace(text)
		parts, err := parseGreeting(escaped)
		var back strings.Builder
		for _, p := range parts {
			back.WriteString(p.text)
		}
		if err != nil || len(parts) > 1 || back.String() != text {
			t.Fatalf("escaped %q parsed to %+v, %v; want the text back", escaped, parts, err)
		}
	})
}

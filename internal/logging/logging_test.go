package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// writeRecorder records each Write call separately.
type writeRecorder struct {
	writes []string
	err    error
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestTextWriter(t *testing.T) {
	tests := []struct {
		name string
		log  func(zerolog.Logger)
		want string
	}{
		{"logger and message", func(l zerolog.Logger) {
			l.Info().Str("logger", "main").Msg("starting up on localhost port 10000")
		}, "main: starting up on localhost port 10000\n"},
		{"other fields dropped", func(l zerolog.Logger) {
			l.Debug().Str("logger", "echo_::1_64624").Str("peer", "[::1]:64624").Int("bytes", 21).
				Msg("received b'This is the message. '")
		}, "echo_::1_64624: received b'This is the message. '\n"},
		{"error field dropped", func(l zerolog.Logger) {
			l.Warn().Str("logger", "main").Err(errors.New("boom")).Msgf("accept error: %v", "boom")
		}, "main: accept error: boom\n"},
		{"timestamp dropped", func(l zerolog.Logger) {
			l = l.With().Timestamp().Logger()
			l.Info().Str("logger", "echo_client").Msg("closing")
		}, "echo_client: closing\n"},
		{"no logger", func(l zerolog.Logger) {
			l.Info().Msg("message")
		}, "message\n"},
		{"empty logger", func(l zerolog.Logger) {
			l.Info().Str("logger", "").Msg("message")
		}, "message\n"},
		{"empty message", func(l zerolog.Logger) {
			l.Info().Str("logger", "main").Msg("")
		}, "main: \n"},
		{"escaped characters decoded", func(l zerolog.Logger) {
			l.Info().Str("logger", `a"b\c`).Msg("tab\t quote\" é \x01")
		}, "a\"b\\c: tab\t quote\" é \\x01\n"},
		{"control characters escaped: one line", func(l zerolog.Logger) {
			l.Info().Str("logger", "echo_/tmp/a\nFAKE").Msg("accepted\r\n\x1b[31mred\x7f \u0085")
		}, "echo_/tmp/a\\x0aFAKE: accepted\\x0d\\x0a\\x1b[31mred\\x7f \\u0085\n"},
		{"logger from context", func(l zerolog.Logger) {
			l = l.With().Str("logger", "main").Logger()
			l.Error().Msg("closing server")
		}, "main: closing server\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w writeRecorder
			tt.log(zerolog.New(TextWriter{Out: &w}).Level(zerolog.TraceLevel))
			if len(w.writes) != 1 {
				t.Fatalf("%d writes %q, want exactly one", len(w.writes), w.writes)
			}
			if w.writes[0] != tt.want {
				t.Errorf("got %q, want %q", w.writes[0], tt.want)
			}
		})
	}
}

func TestTextWriterWrite(t *testing.T) {
	var out bytes.Buffer
	event := []byte(`{"level":"info","logger":"main","message":"hi"}` + "\n")
	n, err := TextWriter{Out: &out}.Write(event)
	if err != nil || n != len(event) {
		t.Errorf("Write = %d, %v; want %d, nil", n, err, len(event))
	}
	if out.String() != "main: hi\n" {
		t.Errorf("wrote %q", out.String())
	}

	out.Reset()
	if n, err := (TextWriter{Out: &out}).Write([]byte("not json\n")); err != nil || n != 9 || out.String() != "not json\n" {
		t.Errorf("Write(not json) = %d, %v and wrote %q; want 9, nil and the line as it is", n, err, out.String())
	}

	// A Buffered's flush: several events, one of them not an event, the
	// last without its newline.
	var w writeRecorder
	batch := `{"logger":"a","message":"one"}` + "\n" + "{oops\n" + `{"message":"two"}`
	if n, err := (TextWriter{Out: &w}).Write([]byte(batch)); err != nil || n != len(batch) {
		t.Errorf("Write(batch) = %d, %v; want %d, nil", n, err, len(batch))
	}
	if want := []string{"a: one\n{oops\ntwo\n"}; !slices.Equal(w.writes, want) {
		t.Errorf("Write(batch) wrote %q, want %q", w.writes, want)
	}

	failing := &writeRecorder{err: errors.New("disk full")}
	if n, err := (TextWriter{Out: failing}).Write(event); n != 0 || !errors.Is(err, failing.err) {
		t.Errorf("Write to a failing writer = %d, %v; want 0 and its error", n, err)
	}
}

func TestNewText(t *testing.T) {
	var out bytes.Buffer
	l, err := New(&out, "text", zerolog.InfoLevel, true)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug().Str("logger", "main").Msg("hidden")
	l.Info().Str("logger", "main").Msg("shown")
	l.Warn().Msg("no logger")
	if want := "main: shown\nno logger\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// TestNewTextBuffered checks that a text logger writing to a Buffered
// writes the lines it holds, in order, as text, in one write when it
// flushes, and that the Buffered still names its destination.
func TestNewTextBuffered(t *testing.T) {
	var out writeRecorder
	b := NewBuffered(&out, time.Hour)
	l, err := New(b, "text", zerolog.InfoLevel, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l.Info().Str("logger", fmt.Sprintf("echo_127.0.0.1_%d", 5000+i)).Str("peer", "p").Msg("connection accepted")
	}
	l.Debug().Msg("hidden")
	if len(out.writes) != 0 {
		t.Fatalf("written before a flush: %q", out.writes)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	l.Warn().Msg("after close")
	if err := b.Flush(); err != nil { // the write after Close is on its way: wait for it
		t.Fatal(err)
	}
	want := []string{
		"echo_127.0.0.1_5000: connection accepted\necho_127.0.0.1_5001: connection accepted\necho_127.0.0.1_5002: connection accepted\n",
		"after close\n",
	}
	if !slices.Equal(out.writes, want) {
		t.Errorf("wrote %q, want %q", out.writes, want)
	}
	if b.Unwrap() != io.Writer(&out) {
		t.Errorf("Unwrap = %T, want the destination", b.Unwrap())
	}
}

func TestNewJSON(t *testing.T) {
	var out bytes.Buffer
	l, err := New(&out, "json", zerolog.DebugLevel, true)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	l.Trace().Str("logger", "main").Msg("hidden")
	l.Debug().Str("logger", "echo_client").Int("bytes", 5).Msg("sending b'hello'")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines %q, want 1", len(lines), out.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	for key, want := range map[string]any{"logger": "echo_client", "level": "debug", "message": "sending b'hello'", "bytes": 5.0} {
		if got[key] != want {
			t.Errorf("%s = %#v, want %#v in %s", key, got[key], want, lines[0])
		}
	}
	ts, _ := got["time"].(string)
	tm, err := time.Parse(zerolog.TimeFieldFormat, ts)
	if err != nil || tm.Before(before) || tm.After(time.Now().Add(time.Second)) {
		t.Errorf("time = %q (%v), want the current time", ts, err)
	}
}

func TestNewConsole(t *testing.T) {
	for _, color := range []bool{false, true} {
		var out bytes.Buffer
		l, err := New(&out, "console", zerolog.InfoLevel, color)
		if err != nil {
			t.Fatal(err)
		}
		l.Debug().Str("logger", "main").Msg("hidden")
		l.Warn().Str("logger", "echo_127.0.0.1_5000").Str("peer", "127.0.0.1:5000").Msg("read error")
		got := out.String()
		if strings.Count(got, "\n") != 1 {
			t.Fatalf("color %v: got %q, want one line", color, got)
		}
		for _, want := range []string{"WRN", "echo_127.0.0.1_5000:", "read error", "peer="} {
			if !strings.Contains(got, want) {
				t.Errorf("color %v: %q does not contain %q", color, got, want)
			}
		}
		if strings.Contains(got, "logger=") {
			t.Errorf("color %v: %q repeats the logger as a field", color, got)
		}
		if hasEscape := strings.Contains(got, "\x1b["); hasEscape != color {
			t.Errorf("color %v: %q has colour escapes: %v", color, got, hasEscape)
		}
		if i, j := strings.Index(got, "WRN"), strings.Index(got, "echo_127.0.0.1_5000:"); i > j || j > strings.Index(got, "read error") {
			t.Errorf("color %v: %q is not in the order level, logger, message", color, got)
		}
	}
}

func TestNewUnknownFormat(t *testing.T) {
	for _, format := range []string{"", "xml", "JSON", "Text", "logfmt"} {
		l, err := New(&bytes.Buffer{}, format, zerolog.InfoLevel, false)
		if err == nil || !strings.Contains(err.Error(), `"`+format+`"`) {
			t.Errorf("New(%q) error = %v, want one naming the format", format, err)
		}
		if l.GetLevel() != zerolog.Disabled {
			t.Errorf("New(%q) returned a logger at %v, want a disabled one", format, l.GetLevel())
		}
	}
	for _, format := range Formats {
		if _, err := New(&bytes.Buffer{}, format, zerolog.InfoLevel, false); err != nil {
			t.Errorf("New(%q): %v", format, err)
		}
	}
	if Formats[0] != "text" {
		t.Errorf("Formats = %q, want the default, text, first", Formats)
	}
}

func TestParseLevel(t *testing.T) {
	want := map[string]zerolog.Level{
		"trace": zerolog.TraceLevel, "debug": zerolog.DebugLevel, "info": zerolog.InfoLevel,
		"warn": zerolog.WarnLevel, "error": zerolog.ErrorLevel, "disabled": zerolog.Disabled,
	}
	if !slices.Equal(Levels, []string{"trace", "debug", "info", "warn", "error", "disabled"}) {
		t.Errorf("Levels = %q", Levels)
	}
	for _, name := range Levels {
		lvl, err := ParseLevel(name)
		if err != nil || lvl != want[name] {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", name, lvl, err, want[name])
		}
	}
	// Everything zerolog.ParseLevel takes that is not in Levels, and more.
	for _, name := range []string{"", "fatal", "panic", "INFO", "Info", " info", "info ", "warning", "err", "-1", "0", "1", "off", "none", "nolevel"} {
		if lvl, err := ParseLevel(name); err == nil {
			t.Errorf("ParseLevel(%q) = %v, want an error", name, lvl)
		} else if !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("ParseLevel(%q) error %q does not name the value", name, err)
		}
	}
}

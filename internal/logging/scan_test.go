package logging

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestTextWriterMatchesJSONDecoding checks the hand-written scanner against
// encoding/json on events with every kind of field around the two it reads.
func TestTextWriterMatchesJSONDecoding(t *testing.T) {
	tests := []struct {
		name  string
		event func(l zerolog.Logger)
	}{
		{"plain", func(l zerolog.Logger) { l.Info().Str("logger", "main").Msg("starting up on localhost port 10000") }},
		{"fields before and after", func(l zerolog.Logger) {
			l.Info().Int("n", -3).Float64("f", 1.5).Bool("b", true).Str("logger", "echo_::1_64624").
				Strs("list", []string{"a,b", "c]"}).Interface("obj", map[string]any{"x": []int{1, 2}, "y": "}"}).
				Dur("d", time.Second).Msg("connection accepted")
		}},
		{"escapes", func(l zerolog.Logger) {
			l.Debug().Str("logger", `we"ird\name`).Msg("received b'\\x00\\n' \"quoted\" \t tab")
		}},
		{"no logger", func(l zerolog.Logger) { l.Warn().Err(errBadEvent).Msg("accept error") }},
		{"unicode", func(l zerolog.Logger) { l.Info().Str("logger", "ünï").Msg("héllo \u2028 ✓") }},
		{"invalid utf-8", func(l zerolog.Logger) { l.Info().Str("logger", "x").Msg("a\xffb") }},
		{"empty message", func(l zerolog.Logger) { l.Info().Str("logger", "x").Msg("") }},
		// The fast path's shape (scanZerolog), and what must leave it.
		{"logger first", func(l zerolog.Logger) {
			l.Info().Str("logger", "echo_1.2.3.4_5").Str("peer", `"logger":"x","message":"y"}`).Msg("connection accepted")
		}},
		{"logger twice", func(l zerolog.Logger) { l.Info().Str("logger", "first").Str("logger", "second").Msg("m") }},
		{"logger in an object", func(l zerolog.Logger) {
			l.Info().Str("logger", "top").Interface("o", map[string]string{"logger": "inner"}).Msg("m")
		}},
		{"message in an object, last", func(l zerolog.Logger) {
			l.Info().Str("logger", "top").Interface("o", map[string]string{"message": "inner"}).Send()
		}},
		{"no message", func(l zerolog.Logger) { l.Info().Str("logger", "x").Str("peer", "p").Send() }},
		{"message ending in a backslash", func(l zerolog.Logger) { l.Info().Str("logger", "x").Msg(`a\`) }},
		{"message ending in a quote", func(l zerolog.Logger) { l.Info().Str("logger", "x").Msg(`say "hi"`) }},
		{"message of quotes and backslashes", func(l zerolog.Logger) { l.Info().Str("logger", `\"`).Msg(`\"\\"",""message":"`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw bytes.Buffer
			tt.event(zerolog.New(&raw).Level(zerolog.DebugLevel).With().Timestamp().Logger())
			var ref struct{ Logger, Message string }
			if err := json.Unmarshal(raw.Bytes(), &ref); err != nil {
				t.Fatalf("reference decode: %v", err)
			}
			want := oneLine(ref.Message) + "\n"
			if ref.Logger != "" {
				want = oneLine(ref.Logger) + ": " + want
			}
			var got bytes.Buffer
			if _, err := (TextWriter{Out: &got}).Write(raw.Bytes()); err != nil {
				t.Fatalf("Write(%s): %v", raw.Bytes(), err)
			}
			if got.String() != want {
				t.Errorf("Write(%s)\n got %q\nwant %q", raw.Bytes(), got.String(), want)
			}
		})
	}
}

func TestScanEventRejectsMalformed(t *testing.T) {
	for _, in := range []string{"", "x", "{", `{"a"}`, `{"a":}`, `{"a":"b"`, `{"a":1 "b":2}`, `["a"]`, `{"a":[1,2}`} {
		if _, _, err := scanEvent([]byte(in)); err == nil {
			t.Errorf("scanEvent(%q) = nil error, want one", in)
		}
	}
}

// FuzzScanZerolog checks the fast path against scanEvent on any valid
// JSON: where both read an event, they read the same logger and message
// (on other bytes they may differ: the fast path takes them on trust); and
// on an event that zerolog writes with a message, the fast path reads it.
func FuzzScanZerolog(f *testing.F) {
	for _, s := range []string{
		`{"level":"info","logger":"echo_::1_1","peer":"[::1]:1","message":"closing"}`,
		`{"level":"info","logger":"a","x":{"logger":"b"},"message":"m"}`,
		`{"level":"info","logger":"a","message":"m\\"}`,
		`{"level":"info","logger":"a","message":"m\""}`,
		`{"level":"info","logger":"a\"","message":"\"message\":\""}`,
		`{"level":"info","logger":"a","x":"y"}`,
	} {
		f.Add([]byte(s), "", "")
	}
	f.Fuzz(func(t *testing.T, p []byte, logger, message string) {
		if fl, fm, ok := scanZerolog(p); ok && json.Valid(p) {
			if sl, sm, err := scanEvent(p); err == nil && (!bytes.Equal(fl, sl) || !bytes.Equal(fm, sm)) {
				t.Errorf("%q: fast path %q, %q; scanEvent %q, %q", p, fl, fm, sl, sm)
			}
		}
		var ev bytes.Buffer
		zl := zerolog.New(&ev)
		zl.Info().Str("logger", logger).Str("peer", message).Msg(message)
		fl, fm, ok := scanZerolog(ev.Bytes())
		sl, sm, err := scanEvent(ev.Bytes())
		// zerolog leaves an empty message out: the slow way then.
		if (!ok && message != "") || err != nil || (ok && (!bytes.Equal(fl, sl) || !bytes.Equal(fm, sm))) {
			t.Errorf("%q: fast path %q, %q, %v; scanEvent %q, %q, %v", ev.Bytes(), fl, fm, ok, sl, sm, err)
		}
	})
}

func BenchmarkTextWriter(b *testing.B) {
	data := bytes.Repeat([]byte("x"), 128)
	for _, bm := range []struct{ name, event string }{
		{"accepted", `{"level":"info","logger":"echo_127.0.0.1_51234","peer":"127.0.0.1:51234","message":"connection accepted"}`},
		{"received-128B", `{"level":"debug","logger":"echo_127.0.0.1_51234","peer":"127.0.0.1:51234","bytes":128,"message":"received b'` + string(data) + `'"}`},
		{"not-fast", `{"level":"info","peer":"127.0.0.1:51234","logger":"echo_127.0.0.1_51234","message":"connection accepted"}`},
	} {
		b.Run(bm.name, func(b *testing.B) {
			event := []byte(bm.event)
			w := TextWriter{Out: discard{}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Write(event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

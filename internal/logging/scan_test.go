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

func BenchmarkTextWriter(b *testing.B) {
	event := []byte(`{"level":"info","logger":"echo_127.0.0.1_51234","peer":"127.0.0.1:51234","time":"2026-11-25T04:27:58Z","message":"connection accepted"}`)
	w := TextWriter{Out: discard{}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Write(event); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

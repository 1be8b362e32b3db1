package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// FuzzTextWriter checks that whatever logger name and message go into a
// zerolog event come out of TextWriter as they went in, as
// "logger: message\n" (or "message\n" without a logger), in one write: the
// JSON escaping zerolog applies is undone exactly. The changes are
// zerolog's, each byte that is not valid UTF-8 becomes U+FFFD, and the
// text format's, each control character is escaped (oneLine).
func FuzzTextWriter(f *testing.F) {
	f.Fuzz(func(t *testing.T, logger, message string) {
		var w writeRecorder
		l := zerolog.New(TextWriter{Out: &w})
		l.Info().
			Str("logger", logger).Str("peer", message).Int("bytes", len(message)).
			Msg(message)
		want := oneLine(validUTF8(message)) + "\n"
		if logger != "" {
			want = oneLine(validUTF8(logger)) + ": " + want
		}
		if strings.Count(want, "\n") != 1 {
			t.Fatalf("want %q is not one line", want)
		}
		if len(w.writes) != 1 {
			t.Fatalf("%d writes %q, want one", len(w.writes), w.writes)
		}
		if got := w.writes[0]; got != want {
			t.Errorf("logger %q, message %q:\n got %q\nwant %q", logger, message, got, want)
		}

		// The same event twice, held and written at once as a Buffered
		// flushes them: two lines in one write.
		var held bytes.Buffer
		hl := zerolog.New(&held)
		for range 2 {
			hl.Info().Str("logger", logger).Str("peer", message).Msg(message)
		}
		var bw writeRecorder
		if _, err := (TextWriter{Out: &bw}).Write(held.Bytes()); err != nil {
			t.Fatal(err)
		}
		if len(bw.writes) != 1 || bw.writes[0] != want+want {
			t.Errorf("two events held: wrote %q, want one write of %q", bw.writes, want+want)
		}
	})
}

// validUTF8 replaces each byte of s that is not part of a valid UTF-8
// sequence with U+FFFD, as zerolog's JSON encoder does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return string(out)
}

// oneLine escapes the control characters of s rune by rune, as
// escapeControls is to: C0 but tab, and DEL, as \xHH, C1 as \u00HH.
func oneLine(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case (r < 0x20 && r != '\t') || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FuzzAppendUnquoted checks appendUnquoted against encoding/json on every
// JSON string body that encoding/json accepts: escapes, surrogate pairs,
// lone surrogates and bytes that are not UTF-8 decode the same way.
func FuzzAppendUnquoted(f *testing.F) {
	for _, s := range []string{`plain`, `b'\\x00\\n'`, `tab\there \"q\" \/ \\`, `\u00e9\u4e16`, `\ud83d\ude00`, `\ud83d x`, `\udc00`, `\ud83d\u0041`, "caf\xc3\xa9 \xff", `\b\f\r`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var want string
		if err := json.Unmarshal([]byte(`"`+body+`"`), &want); err != nil {
			return // not a JSON string body: zerolog never writes one
		}
		if got := string(appendUnquoted(nil, []byte(body))); got != want {
			t.Errorf("body %q:\n got %q\nwant %q", body, got, want)
		}
	})
}

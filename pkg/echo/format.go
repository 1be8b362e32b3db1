package echo

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Quote returns b formatted as Python's repr(bytes) formats it: b'...' with
// backslash escapes for the quote, backslash, tab, newline, carriage return
// and every byte outside printable ASCII. Like Python, it switches to double
// quotes when b holds a single quote and no double quote.
func Quote(b []byte) string {
	return string(AppendQuote(make([]byte, 0, len(b)+3), b))
}

// AppendQuote appends the Python bytes literal of b (see [Quote]) to dst and
// returns the extended buffer. It allocates only when dst must grow.
func AppendQuote(dst, b []byte) []byte {
	quote := byte('\'')
	if bytes.IndexByte(b, '\'') >= 0 && bytes.IndexByte(b, '"') < 0 {
		quote = '"'
	}
	dst = append(dst, 'b', quote)
	for _, c := range b {
		switch {
		case c == quote || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c < ' ' || c >= 0x7f:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, quote)
}

// DefaultLogMaxBytes is how many bytes of a chunk a log line shows when
// Server.LogMaxBytes or Client.LogMaxBytes is zero.
const DefaultLogMaxBytes = 256

// QuoteMax is [Quote] for log lines, which must stay short whatever a peer
// sends: it shows at most limit bytes of b. When b is longer, the literal
// of its first limit bytes is followed by "... (N more bytes)", N being the
// number left out, as in b'abc'... (1021 more bytes). A negative limit
// shows all of b, as Quote does.
func QuoteMax(b []byte, limit int) string {
	shown := len(b)
	if limit >= 0 {
		shown = min(shown, limit)
	}
	return string(AppendQuoteMax(make([]byte, 0, shown+32), b, limit))
}

// AppendQuoteMax appends [QuoteMax] of b to dst and returns the extended
// buffer. It allocates only when dst must grow.
func AppendQuoteMax(dst, b []byte, limit int) []byte {
	if limit < 0 || len(b) <= limit {
		return AppendQuote(dst, b)
	}
	dst = AppendQuote(dst, b[:limit])
	dst = append(dst, "... ("...)
	dst = strconv.AppendInt(dst, int64(len(b)-limit), 10)
	return append(dst, " more bytes)"...)
}

// appendOneLine appends s, a field that varies by connection (a Unix
// socket's path, what a PROXY header said), with its control characters
// written \xHH, so that a peer or a path cannot break the line.
func appendOneLine(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		} else {
			b = append(b, c)
		}
	}
	return b
}

// headerFieldMax is the most bytes of a PROXY header's field (a TLV's
// value, a Unix socket's path) that a log line or a greeting shows.
const headerFieldMax = 255

// peerText returns s, a field a peer sent, fit for a log line: its control
// characters escaped (appendOneLine), and at most headerFieldMax bytes of
// it, cut where a character starts, then "... (N more bytes)".
func peerText(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		clean = s[i] >= 0x20 && s[i] != 0x7f
	}
	if clean && len(s) <= headerFieldMax {
		return s
	}
	n := min(len(s), headerFieldMax)
	for n < len(s) && n > 0 && !utf8.RuneStart(s[n]) {
		n-- // cut where a character starts
	}
	shown := s[:n]
	b := appendOneLine(make([]byte, 0, len(shown)+24), shown)
	if len(s) > len(shown) {
		b = append(strconv.AppendInt(append(b, "... ("...), int64(len(s)-len(shown)), 10), " more bytes)"...)
	}
	return string(b)
}

// FormatDuration returns d as time.Duration's String does, without the
// zero minutes and seconds that String gives whole hours and minutes:
// 10000h, 2m, 1h30m, and 1.5s or 1m0.5s as String has them. Messages show
// durations so, as users write them.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok { // whole minutes: 2m0s, 1h30m0s
		s = t + "m"
		if t, ok := strings.CutSuffix(s, "h0m"); ok { // whole hours: 1h0m0s
			s = t + "h"
		}
	}
	return s
}

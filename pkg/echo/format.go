package echo

import (
	"bytes"
	"strconv"
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

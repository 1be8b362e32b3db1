package logging

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

var errBadEvent = errors.New("not a JSON object")

// The keys scanZerolog looks for. Preceded by a comma, or followed by a
// quote, each can only be a key, never inside a string, where zerolog
// escapes every quote.
var (
	levelKey   = []byte(`{"level":"`)
	loggerKey  = []byte(`,"logger":"`)
	loggerName = []byte(`logger":"`)
	messageKey = []byte(`,"message":"`)
)

// scanZerolog is scanEvent's fast path, for an event in the shape
// zerolog writes echoctl's: {"level":"L","logger":"NAME",...,"message":"M"},
// the level first, the logger the first field after it and the message
// the last. It finds the two without walking the fields in between, and
// reports ok only where it finds what scanEvent would in valid JSON: a
// "logger" key among those fields too, or a message that is not the last
// value, sends the event the slow way. It does not check that the fields
// in between are valid JSON: zerolog wrote them.
func scanZerolog(p []byte) (logger, message []byte, ok bool) {
	p = bytes.TrimSuffix(p, []byte("\n"))
	n := len(p)
	if !bytes.HasPrefix(p, levelKey) || p[n-1] != '}' {
		return nil, nil, false
	}
	lv := bytes.IndexByte(p[len(levelKey):], '"') + len(levelKey) // the level's closing quote
	if lv < len(levelKey) || escaped(p, lv) || !bytes.HasPrefix(p[lv+1:], loggerKey) {
		return nil, nil, false
	}
	ls := lv + 1 + len(loggerKey) // the logger's first byte
	le := skipString(p, ls-1)     // just past its closing quote
	if le < 0 {
		return nil, nil, false
	}
	// The message: the first "message" key after the logger, whose
	// string must end the object.
	mk := bytes.Index(p[le:], messageKey)
	if mk < 0 {
		return nil, nil, false
	}
	mk += le
	ms := mk + len(messageKey) // its first byte
	if skipString(p, ms-1) != n-1 || bytes.Contains(p[le:mk], loggerName) {
		return nil, nil, false
	}
	return p[ls : le-1], p[ms : n-2], true
}

// escaped reports whether an odd run of backslashes precedes p[i].
func escaped(p []byte, i int) bool {
	j := i
	for j > 0 && p[j-1] == '\\' {
		j--
	}
	return (i-j)%2 == 1
}

// scanEvent returns the raw (still quoted, without the quotes) JSON string
// values of the "logger" and "message" keys of the object in p, skipping
// every other value. Strings without escapes come back as sub-slices of p.
func scanEvent(p []byte) (logger, message []byte, err error) {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return nil, nil, errBadEvent
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return nil, nil, nil
	}
	for {
		if i >= len(p) || p[i] != '"' {
			return nil, nil, errBadEvent
		}
		keyEnd := skipString(p, i)
		if keyEnd < 0 {
			return nil, nil, errBadEvent
		}
		key := p[i+1 : keyEnd-1]
		i = skipSpace(p, keyEnd)
		if i >= len(p) || p[i] != ':' {
			return nil, nil, errBadEvent
		}
		i = skipSpace(p, i+1)
		end := skipValue(p, i)
		if end < 0 {
			return nil, nil, errBadEvent
		}
		if p[i] == '"' {
			switch string(key) {
			case "logger":
				logger = p[i+1 : end-1]
			case "message":
				message = p[i+1 : end-1]
			}
		}
		i = skipSpace(p, end)
		if i >= len(p) {
			return nil, nil, errBadEvent
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return logger, message, nil
		default:
			return nil, nil, errBadEvent
		}
	}
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at p[i]
// (a quote), or -1.
func skipString(p []byte, i int) int {
	for j := i + 1; j < len(p); {
		q := bytes.IndexByte(p[j:], '"')
		if q < 0 {
			return -1
		}
		j += q
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		k := j
		for k > i+1 && p[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j + 1
		}
		j++
	}
	return -1
}

// skipValue returns the index just past the JSON value at p[i], or -1. It
// tracks nesting with a counter, not recursion.
func skipValue(p []byte, i int) int {
	if i >= len(p) {
		return -1
	}
	switch p[i] {
	case '"':
		return skipString(p, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(p); j++ {
			switch p[j] {
			case '"':
				if j = skipString(p, j) - 1; j < 0 {
					return -1
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i // a number, true, false or null
	for j < len(p) && strings.IndexByte(" \t\r\n,}]", p[j]) < 0 {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// appendUnquoted appends the JSON string body s with its escapes decoded,
// as encoding/json decodes a string: \uXXXX escapes (a surrogate pair
// joined, a lone surrogate as U+FFFD) and each byte that is not valid
// UTF-8 as U+FFFD. It runs for every logged line, and at -v for every
// read and echo, which encoding/json made cost a third of the server's
// time; FuzzAppendUnquoted checks it against encoding/json.
func appendUnquoted(dst, s []byte) []byte {
	if !utf8.Valid(s) {
		// Never from zerolog, which escapes such bytes: the slow way.
		return appendUnquoted(dst, appendValidUTF8(nil, s))
	}
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		s = s[i:]
		if len(s) < 2 {
			return append(dst, s...) // a lone backslash at the end: as it is
		}
		switch c := s[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[2:])
			if !ok {
				return append(dst, s...)
			}
			s = s[6:]
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					r2, ok = hex4(s[2:])
				}
				if pair := utf16.DecodeRune(r, r2); ok && pair != utf8.RuneError {
					r, s = pair, s[6:]
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return append(dst, s...) // not JSON: as it is
		}
		s = s[2:]
	}
	return dst
}

// hex4 decodes the four hexadecimal digits a \u escape starts with.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendValidUTF8 appends p with each byte that is not valid UTF-8
// replaced by U+FFFD.
func appendValidUTF8(dst, p []byte) []byte {
	if utf8.Valid(p) {
		return append(dst, p...)
	}
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, r)
		} else {
			dst = append(dst, p[:size]...)
		}
		p = p[size:]
	}
	return dst
}

// escapeControls escapes the control characters of line[from:], in
// place: C0 but tab, and DEL, as \xHH, C1 (U+0080 to U+009F) as \u00HH. zerolog
// writes JSON, whose escapes the text format undoes (appendUnquoted), so
// a newline a peer put in a field would otherwise end the line early. The
// seed's data literals ("received b'...'") hold none: they are escaped
// already.
func escapeControls(line []byte, from int) []byte {
	i := from
	for ; i < len(line); i++ {
		if c := line[i]; mayEscape[c] && ((c < 0x20 && c != '\t') || c == 0x7f || (c == 0xc2 && i+1 < len(line) && line[i+1] >= 0x80 && line[i+1] < 0xa0)) {
			break
		}
	}
	if i == len(line) {
		return line
	}
	rest := bytes.Clone(line[i:])
	line = line[:i]
	for j := 0; j < len(rest); j++ {
		switch c := rest[j]; {
		case (c < 0x20 && c != '\t') || c == 0x7f:
			line = append(line, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		case c == 0xc2 && j+1 < len(rest) && rest[j+1] >= 0x80 && rest[j+1] < 0xa0:
			j++
			line = append(line, '\\', 'u', '0', '0', hexDigits[rest[j]>>4], hexDigits[rest[j]&0xf])
		default:
			line = append(line, c)
		}
	}
	return line
}

const hexDigits = "0123456789abcdef"

// mayEscape marks the bytes that may start what escapeControls escapes:
// one table look-up a byte, for the lines that have none.
var mayEscape = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = c != '\t'
	}
	t[0x7f], t[0xc2] = true, true
	return t
}()

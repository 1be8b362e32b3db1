package logging

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

var errBadEvent = errors.New("not a JSON object")

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
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
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

// appendUnquoted appends the JSON string body s with its escapes decoded.
// Bodies without a backslash are copied as they are; the rare escaped one
// goes through encoding/json.
func appendUnquoted(dst, s []byte) []byte {
	escaped := false
	for _, c := range s {
		if c == '\\' {
			escaped = true
			break
		}
	}
	if !escaped {
		if utf8.Valid(s) {
			return append(dst, s...)
		}
	}
	quoted := make([]byte, 0, len(s)+2)
	quoted = append(append(append(quoted, '"'), s...), '"')
	var str string
	if err := json.Unmarshal(quoted, &str); err != nil {
		return append(dst, s...)
	}
	return append(dst, str...)
}

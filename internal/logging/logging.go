// Package logging builds the zerolog loggers echoctl writes to stderr, in
// one of three formats: "text" (the seed's "name: message" lines),
// "console" (zerolog's console writer) and "json" (one object a line).
package logging

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Formats lists the accepted log formats, the default first.
var Formats = []string{"text", "console", "json"}

// Levels lists the accepted log level names, from most to least verbose.
var Levels = []string{"trace", "debug", "info", "warn", "error", "disabled"}

// ParseLevel parses one of Levels.
func ParseLevel(s string) (zerolog.Level, error) {
	if !slices.Contains(Levels, s) {
		return zerolog.NoLevel, fmt.Errorf("unknown log level %q (want one of %v)", s, Levels)
	}
	return zerolog.ParseLevel(s)
}

// New returns a logger writing to w in format at level. color turns on
// colour for the console format (use it when w is a terminal). When w is
// a *Buffered, the text format's lines are made as it flushes, and lines
// it drops are counted in a warning (Buffered.OnDrop).
func New(w io.Writer, format string, level zerolog.Level, color bool) (zerolog.Logger, error) {
	l, err := newLogger(w, format, level, color)
	if b, ok := w.(*Buffered); ok && err == nil {
		b.OnDrop(dropNotice(l))
	}
	return l, err
}

func newLogger(w io.Writer, format string, level zerolog.Level, color bool) (zerolog.Logger, error) {
	switch format {
	case "text":
		if b, ok := w.(*Buffered); ok {
			// b holds the events and makes them lines when it flushes,
			// many at a time: cheaper than one at a time between a
			// loop's system calls, which keep the CPU's caches for
			// themselves.
			b.out = TextWriter{Out: b.dest}
			return zerolog.New(b).Level(level), nil
		}
		return zerolog.New(TextWriter{Out: w}).Level(level), nil
	case "console":
		cw := zerolog.ConsoleWriter{
			Out:           w,
			NoColor:       !color,
			TimeFormat:    time.RFC3339Nano,
			PartsOrder:    []string{zerolog.TimestampFieldName, zerolog.LevelFieldName, "logger", zerolog.MessageFieldName},
			FieldsExclude: []string{"logger"},
			FormatPartValueByName: func(v any, name string) string {
				if name == "logger" && v != nil {
					return fmt.Sprintf("%s:", v)
				}
				return fmt.Sprint(v)
			},
		}
		return zerolog.New(cw).Level(level).With().Timestamp().Logger(), nil
	case "json":
		return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
	}
	return zerolog.Nop(), fmt.Errorf("unknown log format %q (want one of %v)", format, Formats)
}

// TextWriter turns zerolog's JSON events into the seed's log lines,
// "logger: message", dropping every other field. It writes each line with
// one Write call, so lines from concurrent connections never interleave.
// A control character in the logger name or the message (a newline in a
// Unix socket's path that a PROXY header named, an escape sequence) is
// written escaped (escapeControls): an event is always one line, and
// never moves a terminal's cursor.
type TextWriter struct {
	Out io.Writer
}

// Write formats the zerolog events in p, one a line: one when zerolog
// writes, many when a Buffered flushes what it held. It scans each event's
// JSON object itself rather than calling encoding/json: the scan is
// shallow (a connection goroutine that logs keeps a small stack), and the
// lines are made in a pooled buffer and written with one Write call. An
// event in the shape zerolog writes echoctl's is read without walking its
// other fields (scanZerolog). A line that is not an event is written as it
// is: never lost.
func (w TextWriter) Write(p []byte) (int, error) {
	bp := lineBuffers.Get().(*[]byte)
	line := (*bp)[:0]
	for rest := p; len(rest) > 0; {
		event := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			event, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		logger, message, ok := scanZerolog(event)
		var err error
		if !ok {
			logger, message, err = scanEvent(event)
		}
		if err != nil {
			line = append(line, bytes.TrimSuffix(event, []byte("\n"))...)
		} else {
			start := len(line)
			if len(logger) > 0 {
				line = append(appendUnquoted(line, logger), ": "...)
			}
			line = escapeControls(appendUnquoted(line, message), start)
		}
		line = append(line, '\n')
	}
	_, err := w.Out.Write(line)
	if cap(line) <= maxPooledLine {
		*bp = line[:0]
		lineBuffers.Put(bp)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// lineBuffers holds the buffers TextWriter makes its lines in; a line
// longer than maxPooledLine (data logged at -v with no --log-max-bytes)
// is left to the garbage collector.
var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

const maxPooledLine = 64 << 10

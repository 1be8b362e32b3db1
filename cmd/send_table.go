package cmd

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// sendTable is what send --count prints: who answered, and how fast.
type sendTable struct {
	Rows []sendTableRow
	// Exchanges were made; Unanswered of them failed before an answer
	// (connect, greeting); Failed in all, Mismatched of them with an echo
	// that differs.
	Exchanges, Unanswered, Failed, Mismatched int
}

// sendTableRow is one greeting (backend) and the exchanges it answered.
type sendTableRow struct {
	Greeting string
	// Conns are the connections it answered, Errors those of them whose
	// exchange then failed, Share Conns in percent of every answer.
	Conns, Errors int64
	Share         float64
	// Latencies of the connect (with the PROXY header and the TLS
	// handshake; zero over UDP, which connects nothing) and of the round
	// trip (from the first write to the end of the echo, of the exchanges
	// that did not fail; zero if none).
	ConnectP50, ConnectP99, RoundTripP50, RoundTripP99 time.Duration
}

// writeSendTable writes t as a table, the greetings aligned left and the
// figures right, then one line of totals.
func writeSendTable(w io.Writer, t sendTable) error {
	cells := [][]string{{"greeting", "conns", "share", "errors", "connect p50", "p99", "round trip p50", "p99"}}
	for _, r := range t.Rows {
		c50, c99, rt50, rt99 := "-", "-", "-", "-"
		if r.ConnectP50 > 0 { // none over UDP
			c50, c99 = latency(r.ConnectP50), latency(r.ConnectP99)
		}
		if r.Conns > r.Errors {
			rt50, rt99 = latency(r.RoundTripP50), latency(r.RoundTripP99)
		}
		cells = append(cells, []string{shortCell(showGreeting(r.Greeting)), strconv.FormatInt(r.Conns, 10), fmt.Sprintf("%.1f%%", r.Share),
			strconv.FormatInt(r.Errors, 10), c50, c99, rt50, rt99})
	}
	widths := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range cells {
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch i {
			case 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString(fmt.Sprintf("%s: %d answered, %d failed", exchanges(t.Exchanges), t.Exchanges-t.Unanswered, t.Failed))
	if t.Unanswered > 0 {
		b.WriteString(fmt.Sprintf(" (%d before an answer)", t.Unanswered))
	}
	if t.Mismatched > 0 {
		b.WriteString(fmt.Sprintf(", %d with an echo that differs", t.Mismatched))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// greetingCellMax is the most characters of a greeting the table shows:
// a greeting may be 1 KiB long, and one such would make every row as wide.
// Each is printed whole on standard error as it comes.
const greetingCellMax = 80

// shortCell cuts s after greetingCellMax characters, ending it with "…".
func shortCell(s string) string {
	if utf8.RuneCountInString(s) <= greetingCellMax {
		return s
	}
	r := []rune(s)
	return string(r[:greetingCellMax-1]) + "…"
}

// exchanges counts n exchanges in words: "1 exchange", "2 exchanges".
func exchanges(n int) string {
	if n == 1 {
		return "1 exchange"
	}
	return fmt.Sprintf("%d exchanges", n)
}

// latency renders a latency as the bench table does: 412µs, 1.25ms, 2.50s.
func latency(d time.Duration) string {
	us := float64(d) / float64(time.Microsecond)
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

// showGreeting shows a server's line as it is when it is printable text
// without spaces at its ends, else quoted (as Go quotes a string), so that
// a terminal never acts on what a server sent and a table stays aligned.
func showGreeting(s string) string {
	plain := s != "" && utf8.ValidString(s) && strings.TrimSpace(s) == s && strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) || r == '\t'
	}) < 0
	if plain {
		return s
	}
	return strconv.Quote(s)
}

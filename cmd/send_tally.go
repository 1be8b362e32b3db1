package cmd

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/echoctl/echoctl/pkg/echo"
)

// Latency histogram bounds, in microseconds: from 1µs to an hour, three
// significant digits (as bench's).
const (
	tallyLowest  = 1
	tallyHighest = int64(time.Hour / time.Microsecond)
	tallyDigits  = 3
)

// maxTallyRows bounds the distinct greetings send --count keeps apart;
// past them, greetings count as otherGreeting, so that a server whose
// greeting changes on every connection cannot grow the table without end.
const maxTallyRows = 100

// Row names that are not a server's greeting.
const (
	noGreeting    = "(none)"  // without --greeting: every answer is one row
	otherGreeting = "(other)" // greetings past maxTallyRows
)

// sendTally counts the exchanges of send --count by the greeting that
// answered them.
type sendTally struct {
	greeting  bool
	rows      map[string]*tallyRow
	exchanges int
	// unanswered counts the exchanges that failed before an answer: the
	// connect or the greeting.
	unanswered    int
	failed        int // every failed exchange, mismatches included
	mismatched    int
	firstErr      error
	firstMismatch *echo.MismatchError
}

// tallyRow is one greeting's exchanges.
type tallyRow struct {
	conns, errors      int64
	connect, roundTrip *hdrhistogram.Histogram
}

func newSendTally(greeting bool) *sendTally {
	return &sendTally{greeting: greeting, rows: map[string]*tallyRow{}}
}

// exchange is what one exchange of send --count traced.
type exchange struct {
	connected, greeted bool
	greeting           string
	connect, roundTrip time.Duration
	err                error
}

// add counts one exchange. It was answered once connected and, with
// --greeting, greeted.
func (t *sendTally) add(ex exchange) {
	err := ex.err
	var mm *echo.MismatchError
	isMismatch := errors.As(err, &mm)
	// Over UDP nothing connects: an echo, even one that differs, answers.
	answered := (ex.connected || err == nil || isMismatch) && (ex.greeted || !t.greeting)
	t.exchanges++
	switch {
	case isMismatch:
		t.failed++
		t.mismatched++
		if t.firstMismatch == nil {
			t.firstMismatch = mm
		}
	case err != nil:
		t.failed++
		if t.firstErr == nil {
			t.firstErr = err
		}
	}
	if !answered {
		t.unanswered++
		return
	}
	name := noGreeting
	if t.greeting {
		name = ex.greeting
	}
	r, ok := t.rows[name]
	if !ok && len(t.rows) >= maxTallyRows {
		name = otherGreeting
		r, ok = t.rows[name]
	}
	if !ok {
		r = &tallyRow{
			connect:   hdrhistogram.New(tallyLowest, tallyHighest, tallyDigits),
			roundTrip: hdrhistogram.New(tallyLowest, tallyHighest, tallyDigits),
		}
		t.rows[name] = r
	}
	r.conns++
	if ex.connected { // over UDP nothing connects
		r.connect.RecordValue(micros(ex.connect))
	}
	if err != nil {
		r.errors++
		return
	}
	r.roundTrip.RecordValue(micros(ex.roundTrip))
}

// micros is d in whole microseconds, within the histograms' bounds.
func micros(d time.Duration) int64 {
	return min(max(d.Microseconds(), tallyLowest), tallyHighest)
}

// failures says how many exchanges failed and how.
func (t *sendTally) failures() string {
	s := fmt.Sprintf("%d of %s failed", t.failed, exchanges(t.exchanges))
	if t.mismatched > 0 {
		s += fmt.Sprintf(" (%d with an echo that differs)", t.mismatched)
	}
	return s
}

// table returns what the tally shows: a row a greeting, the most
// answered first.
func (t *sendTally) table() sendTable {
	st := sendTable{Exchanges: t.exchanges, Unanswered: t.unanswered, Failed: t.failed, Mismatched: t.mismatched}
	var answered int64
	for _, r := range t.rows {
		answered += r.conns
	}
	for _, name := range slices.Sorted(maps.Keys(t.rows)) {
		r := t.rows[name]
		row := sendTableRow{
			Greeting: name, Conns: r.conns, Errors: r.errors,
			Share: 100 * float64(r.conns) / float64(answered),
		}
		if r.connect.TotalCount() > 0 {
			row.ConnectP50, row.ConnectP99 = usDuration(r.connect.ValueAtQuantile(50)), usDuration(r.connect.ValueAtQuantile(99))
		}
		if r.roundTrip.TotalCount() > 0 {
			row.RoundTripP50, row.RoundTripP99 = usDuration(r.roundTrip.ValueAtQuantile(50)), usDuration(r.roundTrip.ValueAtQuantile(99))
		}
		st.Rows = append(st.Rows, row)
	}
	slices.SortStableFunc(st.Rows, func(a, b sendTableRow) int { return cmp.Compare(b.Conns, a.Conns) })
	return st
}

func usDuration(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

package cmd

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/echoctl/echoctl/pkg/echo"
)

func TestWriteSendTable(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		table sendTable
		want  string
	}{
		{
			name: "three backends",
			table: sendTable{Exchanges: 31, Unanswered: 1, Failed: 2, Mismatched: 1, Rows: []sendTableRow{
				{Greeting: "backend-0", Conns: 10, Share: 33.3333, ConnectP50: 120 * time.Microsecond, ConnectP99: 2500 * time.Microsecond, RoundTripP50: ms, RoundTripP99: 3 * time.Second},
				{Greeting: "backend-1", Conns: 10, Errors: 1, Share: 33.3333, ConnectP50: 90 * time.Microsecond, ConnectP99: 95 * time.Microsecond, RoundTripP50: 200 * time.Microsecond, RoundTripP99: 300 * time.Microsecond},
				{Greeting: "pod b\x1b[2J", Conns: 10, Errors: 10, Share: 33.3333, ConnectP50: 90 * time.Microsecond, ConnectP99: 95 * time.Microsecond},
			}},
			want: "" +
				"greeting        conns  share  errors  connect p50     p99  round trip p50    p99\n" +
				"backend-0          10  33.3%       0        120µs  2.50ms          1.00ms  3.00s\n" +
				"backend-1          10  33.3%       1         90µs    95µs           200µs  300µs\n" +
				`"pod b\x1b[2J"     10  33.3%      10         90µs    95µs               -      -` + "\n" +
				"31 exchanges: 30 answered, 2 failed (1 before an answer), 1 with an echo that differs\n",
		},
		{
			name: "a long greeting cut in the table",
			table: sendTable{Exchanges: 1, Rows: []sendTableRow{
				{Greeting: strings.Repeat("é", 100), Conns: 1, Share: 100, ConnectP50: ms, ConnectP99: ms, RoundTripP50: ms, RoundTripP99: ms},
			}},
			want: "" +
				"greeting" + strings.Repeat(" ", 72) + "  conns   share  errors  connect p50     p99  round trip p50     p99\n" +
				strings.Repeat("é", 79) + "…      1  100.0%       0       1.00ms  1.00ms          1.00ms  1.00ms\n" +
				"1 exchange: 1 answered, 0 failed\n",
		},
		{
			name: "one exchange",
			table: sendTable{Exchanges: 1, Rows: []sendTableRow{
				{Greeting: "backend-0", Conns: 1, Share: 100, ConnectP50: 120 * time.Microsecond, ConnectP99: 120 * time.Microsecond, RoundTripP50: ms, RoundTripP99: ms},
			}},
			want: "" +
				"greeting   conns   share  errors  connect p50    p99  round trip p50     p99\n" +
				"backend-0      1  100.0%       0        120µs  120µs          1.00ms  1.00ms\n" +
				"1 exchange: 1 answered, 0 failed\n",
		},
		{
			name:  "nothing answered",
			table: sendTable{Exchanges: 2, Unanswered: 2, Failed: 2},
			want: "greeting  conns  share  errors  connect p50  p99  round trip p50  p99\n" +
				"2 exchanges: 0 answered, 2 failed (2 before an answer)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeSendTable(&b, tt.table); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("table:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestShowGreeting(t *testing.T) {
	for in, want := range map[string]string{
		"backend-1":      "backend-1",
		"pod a, zone b":  "pod a, zone b",
		"":               `""`,
		" padded":        `" padded"`,
		"tab\there":      `"tab\there"`,
		"\x1b[31mred":    `"\x1b[31mred"`,
		"bad \xff utf-8": `"bad \xff utf-8"`,
		"zürich-backend": "zürich-backend",
	} {
		if got := showGreeting(in); got != want {
			t.Errorf("showGreeting(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzWriteSendTable: whatever a server greets with, each row is one line
// of printable text, and the table has a line a row plus the heading and
// the totals.
func FuzzWriteSendTable(f *testing.F) {
	f.Add("backend-1", "backend-2", int64(3), int64(1))
	f.Add("\n", "\r\x00\x1b", int64(0), int64(7))
	f.Fuzz(func(t *testing.T, a, b string, na, nb int64) {
		table := sendTable{Exchanges: 2, Rows: []sendTableRow{
			{Greeting: a, Conns: na, Share: 50, ConnectP50: time.Duration(na)},
			{Greeting: b, Conns: nb, Share: 50, RoundTripP99: time.Duration(nb)},
		}}
		var out bytes.Buffer
		if err := writeSendTable(&out, table); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4:\n%q", len(lines), out.String())
		}
		for _, l := range lines {
			if !utf8.ValidString(l) || strings.ContainsAny(l, "\r\x00\x1b\t") {
				t.Fatalf("line %q holds what a terminal would act on", l)
			}
		}
	})
}

// TestSendTallyUDP: over UDP nothing connects: an exchange is answered
// by an echo, even one that differs, and not by the socket alone (a
// server that answers nothing was counted as 3 answered, 3 failed); the
// connect columns say "-".
func TestSendTallyUDP(t *testing.T) {
	tally := newSendTally(false)
	tally.add(exchange{roundTrip: 3 * time.Millisecond})
	tally.add(exchange{err: errors.New("no echo")})
	tally.add(exchange{err: &echo.MismatchError{}})
	var b bytes.Buffer
	if err := writeSendTable(&b, tally.table()); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"greeting  conns   share  errors  connect p50  p99  round trip p50     p99\n" +
		"(none)        2  100.0%       1            -    -          3.00ms  3.00ms\n" +
		"3 exchanges: 2 answered, 2 failed (1 before an answer), 1 with an echo that differs\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

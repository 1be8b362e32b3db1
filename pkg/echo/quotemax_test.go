package echo_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

func TestQuoteMax(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"", 0, `b''`},
		{"", 5, `b''`},
		{"abc", -1, `b'abc'`},
		{"abc", 3, `b'abc'`},
		{"abc", 4, `b'abc'`},
		{"abc", 2, `b'ab'... (1 more bytes)`},
		{"abc", 0, `b''... (3 more bytes)`},
		{"\x00\n'", 2, `b'\x00\n'... (1 more bytes)`},
		// The quote follows what is shown, which is a valid literal.
		{`ab'"`, 3, `b"ab'"... (1 more bytes)`},
		{strings.Repeat("x", 1000), 256, "b'" + strings.Repeat("x", 256) + "'... (744 more bytes)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d", tt.in, tt.limit), func(t *testing.T) {
			if got := echo.QuoteMax([]byte(tt.in), tt.limit); got != tt.want {
				t.Errorf("QuoteMax(%q, %d) = %s, want %s", tt.in, tt.limit, got, tt.want)
			}
			if got := echo.AppendQuoteMax([]byte("> "), []byte(tt.in), tt.limit); string(got) != "> "+tt.want {
				t.Errorf("AppendQuoteMax = %s, want > %s", got, tt.want)
			}
		})
	}
}

func TestAppendQuoteMaxDoesNotAllocate(t *testing.T) {
	in := bytes.Repeat([]byte("\x00a'"), 300)
	dst := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { echo.AppendQuoteMax(dst, in, 256) }); n != 0 {
		t.Errorf("AppendQuoteMax allocates %v times with room in dst", n)
	}
}

// FuzzQuoteMax: QuoteMax is Quote when nothing is cut; otherwise it is
// Quote of what is shown followed by an exact count of what is not, and
// it is never longer than Quote of the whole.
func FuzzQuoteMax(f *testing.F) {
	f.Add([]byte("This is the message. It will be sent in parts."), 10)
	f.Add([]byte{}, 0)
	f.Add([]byte("'\"\\\t\n\r\x00\x7f\x80\xff"), 3)
	f.Add(allBytes(), 256)
	f.Add(allBytes(), -1)
	f.Fuzz(func(t *testing.T, in []byte, limit int) {
		got := echo.QuoteMax(in, limit)
		if limit < 0 || len(in) <= limit {
			if want := echo.Quote(in); got != want {
				t.Fatalf("QuoteMax(%q, %d) = %s, want Quote's %s", in, limit, got, want)
			}
			return
		}
		lit, rest, ok := strings.Cut(got, "... (")
		if !ok || !strings.HasSuffix(rest, " more bytes)") {
			t.Fatalf("QuoteMax(%q, %d) = %s: no \"... (N more bytes)\"", in, limit, got)
		}
		if lit != echo.Quote(in[:limit]) {
			t.Fatalf("QuoteMax(%q, %d) = %s: shows %s, want %s", in, limit, got, lit, echo.Quote(in[:limit]))
		}
		back, err := unquote(lit)
		if err != nil || !bytes.Equal(back, in[:limit]) {
			t.Fatalf("QuoteMax(%q, %d) = %s: literal decodes to %q, %v", in, limit, got, back, err)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(rest, " more bytes)"))
		if err != nil || n != len(in)-limit {
			t.Fatalf("QuoteMax(%q, %d) = %s: says %q more bytes, want %d", in, limit, got, rest, len(in)-limit)
		}
		for i := range len(got) {
			if c := got[i]; c < 0x20 || c >= 0x7f {
				t.Fatalf("QuoteMax(%q, %d) = %q: byte %#02x is not printable ASCII", in, limit, got, c)
			}
		}
	})
}

// TestLogMaxBytes: the server's and the client's data log lines cut long
// chunks; zero means 256 bytes, a negative limit none.
func TestLogMaxBytes(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	tests := []struct {
		name  string
		limit int
		shown int
	}{
		{"default", 0, 256},
		{"ten", 10, 10},
		{"none", -1, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			logger := zerolog.New(&logs).Level(zerolog.DebugLevel)
			ts := echotest.NewServer(t, &echo.Server{BufferSize: 4096, Logger: logger, LogMaxBytes: tt.limit})
			cl := &echo.Client{Addr: ts.Addr, BufferSize: 4096, Timeout: ioTimeout, Logger: logger, LogMaxBytes: tt.limit}
			if _, err := cl.Send(t.Context(), [][]byte{msg}, nil); err != nil {
				t.Fatal(err)
			}
			if err := shutdown(ts.Server, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			want := echo.QuoteMax(msg, tt.limit)
			if tt.limit == 0 {
				want = echo.QuoteMax(msg, echo.DefaultLogMaxBytes)
			}
			seen := map[string]bool{}
			for _, l := range parseLog(t, logs.String()) {
				verb, quoted, ok := strings.Cut(l.Message, " b")
				if !ok || l.Bytes == nil {
					continue
				}
				if *l.Bytes != len(msg) {
					continue // the kernel split the chunk: rare on loopback
				}
				seen[verb] = true
				if "b"+quoted != want {
					t.Errorf("%s: logged %s %.60s..., want %.60s...", l.Logger, verb, "b"+quoted, want)
				}
			}
			for _, verb := range []string{"sending", "received", "sent"} {
				if !seen[verb] {
					t.Errorf("no %q line logged:\n%s", verb, logs.String())
				}
			}
		})
	}
}

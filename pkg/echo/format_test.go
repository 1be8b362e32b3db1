package echo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/testtool"
	"github.com/echoctl/echoctl/pkg/echo"
)

// allPrintable is every printable ASCII byte, 0x20 (space) to 0x7e (~).
func allPrintable() []byte {
	b := make([]byte, 0, 0x7f-0x20)
	for c := byte(0x20); c < 0x7f; c++ {
		b = append(b, c)
	}
	return b
}

// allBytes is every byte value, 0x00 to 0xff, in order.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// The wants below were produced by Python 3's repr(bytes); see
// TestQuoteMatchesPython for the same comparison made live.
var quoteTests = []struct {
	name string
	in   []byte
	want string
}{
	{"nil", nil, `b''`},
	{"empty", []byte{}, `b''`},
	{"single quote", []byte(`'`), `b"'"`},
	{"double quote", []byte(`"`), `b'"'`},
	{"both quotes", []byte(`'"`), `b'\'"'`},
	{"both quotes reversed", []byte(`"'`), `b'"\''`},
	{"apostrophe in text", []byte("it's"), `b"it's"`},
	{"apostrophe and backslash", []byte(`it's \ `), `b"it's \\ "`},
	{"backslash", []byte(`\`), `b'\\'`},
	{"two backslashes", []byte(`\\`), `b'\\\\'`},
	{"tab newline return", []byte("\t\n\r"), `b'\t\n\r'`},
	{"nul", []byte{0x00}, `b'\x00'`},
	{"vertical tab form feed escape", []byte{0x0b, 0x0c, 0x1b}, `b'\x0b\x0c\x1b'`},
	{"unit separator", []byte{0x1f}, `b'\x1f'`},
	{"space", []byte{0x20}, `b' '`},
	{"tilde", []byte{0x7e}, `b'~'`},
	{"del", []byte{0x7f}, `b'\x7f'`},
	{"0x80", []byte{0x80}, `b'\x80'`},
	{"0xff", []byte{0xff}, `b'\xff'`},
	{"lowercase hex", []byte{0xab, 0xcd, 0xef}, `b'\xab\xcd\xef'`},
	{"utf-8 is escaped bytewise", []byte("é"), `b'\xc3\xa9'`},
	{"seed message", []byte("This is the message. It will be sent in parts."), `b'This is the message. It will be sent in parts.'`},
	{"all printable ASCII", allPrintable(), `b' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_` + "`" + `abcdefghijklmnopqrstuvwxyz{|}~'`},
	{"single quote among escapes", []byte("'\x00\\\n"), `b"'\x00\\\n"`},
}

func TestQuote(t *testing.T) {
	for _, tt := range quoteTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := echo.Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestAppendQuote(t *testing.T) {
	for _, tt := range quoteTests {
		t.Run(tt.name, func(t *testing.T) {
			for _, prefix := range []string{"", "received "} {
				// Both with room to spare and with none, so that the
				// growing path and the in-place path are both covered.
				for _, extra := range []int{0, 4*len(tt.in) + 3} {
					dst := append(make([]byte, 0, len(prefix)+extra), prefix...)
					got := echo.AppendQuote(dst, tt.in)
					if want := prefix + tt.want; string(got) != want {
						t.Errorf("AppendQuote(%q, %q) with cap %d = %s, want %s", prefix, tt.in, cap(dst), got, want)
					}
				}
			}
		})
	}
}

// TestAppendQuoteDoesNotAllocate checks the promise in AppendQuote's doc
// comment: no allocation when dst has room. It counts allocations; it does
// not time anything.
func TestAppendQuoteDoesNotAllocate(t *testing.T) {
	in := append(allBytes(), allPrintable()...)
	dst := make([]byte, 0, 4*len(in)+3)
	allocs := testing.AllocsPerRun(100, func() {
		dst = echo.AppendQuote(dst[:0], in)
	})
	if allocs != 0 {
		t.Errorf("AppendQuote into a buffer with room: %v allocations per run, want 0", allocs)
	}
}

// unquote decodes a bytes literal in the exact form Python's repr(bytes)
// produces, and rejects anything else: a different quote choice, a byte
// escaped that need not be, a raw byte that must be escaped, uppercase hex,
// or escapes repr never writes (\", \a, \0, ...).
func unquote(s string) ([]byte, error) {
	if len(s) < 3 || s[0] != 'b' || (s[1] != '\'' && s[1] != '"') || s[len(s)-1] != s[1] {
		return nil, fmt.Errorf("not a b'...' or b\"...\" literal: %q", s)
	}
	q := s[1]
	body := s[2 : len(s)-1]
	var out []byte
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == q:
			return nil, fmt.Errorf("unescaped quote %q at %d in %q", c, i, s)
		case c < 0x20 || c >= 0x7f:
			return nil, fmt.Errorf("raw byte %#02x at %d in %q", c, i, s)
		case c != '\\':
			out = append(out, c)
			continue
		}
		i++
		if i >= len(body) {
			return nil, fmt.Errorf("dangling backslash in %q", s)
		}
		switch e := body[i]; e {
		case '\\':
			out = append(out, '\\')
		case '\'':
			if q != '\'' {
				return nil, fmt.Errorf("needless \\' inside double quotes in %q", s)
			}
			out = append(out, '\'')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 'x':
			if i+2 >= len(body) {
				return nil, fmt.Errorf("short \\x escape in %q", s)
			}
			h := body[i+1 : i+3]
			if strings.ToLower(h) != h {
				return nil, fmt.Errorf("uppercase hex %q in %q", h, s)
			}
			v, err := hex.DecodeString(h)
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape %q in %q", h, s)
			}
			if b := v[0]; b >= 0x20 && b < 0x7f || b == '\t' || b == '\n' || b == '\r' {
				return nil, fmt.Errorf("needless \\x%s in %q", h, s)
			}
			out = append(out, v[0])
			i += 2
		default:
			return nil, fmt.Errorf("escape \\%c that repr never writes, in %q", e, s)
		}
	}
	return out, nil
}

func TestUnquote(t *testing.T) {
	// The decoder the fuzz test relies on must itself reject what Python
	// would never print, or the fuzz test could pass on a wrong Quote.
	for _, bad := range []string{
		``, `b`, `b'`, `'a'`, `b'a"`, `b'''`, `b"""`, `b'\'`, `b'\"'`, `b"\'"`,
		`b'\x4'`, `b'\x'`, `b'\xFF'`, `b'\x41'`, `b'\x0a'`, `b'\a'`, `b'\0'`,
		"b'\x00'", "b'\xff'", "b'\n'",
	} {
		if got, err := unquote(bad); err == nil {
			t.Errorf("unquote(%q) = %q, want an error", bad, got)
		}
	}
	for _, tt := range quoteTests {
		got, err := unquote(tt.want)
		if err != nil || !bytes.Equal(got, tt.in) {
			t.Errorf("unquote(%s) = %q, %v; want %q", tt.want, got, err, tt.in)
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, tt := range quoteTests {
		f.Add(tt.in)
	}
	f.Add(allBytes())
	f.Add([]byte("'\"\\\t\n\r\x00\x7f\x80\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got := echo.Quote(in)
		if !strings.HasPrefix(got, "b'") && !strings.HasPrefix(got, `b"`) {
			t.Fatalf("Quote(%q) = %s: does not start with b' or b\"", in, got)
		}
		for i := range len(got) {
			if c := got[i]; c < 0x20 || c >= 0x7f {
				t.Fatalf("Quote(%q) = %q: byte %#02x at %d is not printable ASCII", in, got, c, i)
			}
		}
		wantQuote := byte('\'')
		if bytes.IndexByte(in, '\'') >= 0 && bytes.IndexByte(in, '"') < 0 {
			wantQuote = '"'
		}
		if got[1] != wantQuote {
			t.Errorf("Quote(%q) = %s: quoted with %c, Python uses %c", in, got, got[1], wantQuote)
		}
		back, err := unquote(got)
		if err != nil {
			t.Fatalf("Quote(%q) = %s: %v", in, got, err)
		}
		if !bytes.Equal(back, in) {
			t.Fatalf("Quote(%q) = %s, which decodes to %q", in, got, back)
		}
		if app := echo.AppendQuote([]byte("x"), in); string(app) != "x"+got {
			t.Fatalf("AppendQuote(\"x\", %q) = %s, want x%s", in, app, got)
		}
	})
}

// pythonReprScript prints repr(bytes.fromhex(line)) for each line of stdin.
const pythonReprScript = `
import sys
for line in sys.stdin:
    sys.stdout.write(repr(bytes.fromhex(line.strip())) + "\n")
`

func TestQuoteMatchesPython(t *testing.T) {
	python := testtool.Need(t, "python3", "Python's repr is the reference")

	inputs := [][]byte{allBytes()[:64], allBytes()[64:128], allBytes()[128:192], allBytes()[192:]}
	rng := rand.New(rand.NewPCG(0x8953633d, 0x47c64f6d))
	const tricky = "'\"\\\t\n\r\x00\x1f \x7e\x7f\x80\xffab"
	for len(inputs) < 2000 {
		b := make([]byte, rng.IntN(65))
		for i := range b {
			if rng.IntN(2) == 0 {
				b[i] = tricky[rng.IntN(len(tricky))]
			} else {
				b[i] = byte(rng.UintN(256))
			}
		}
		inputs = append(inputs, b)
	}
	var seen [256]bool
	var stdin bytes.Buffer
	for _, b := range inputs {
		for _, c := range b {
			seen[c] = true
		}
		stdin.WriteString(hex.EncodeToString(b) + "\n")
	}
	for c, ok := range seen {
		if !ok {
			t.Fatalf("inputs never contain byte %#02x", c)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", pythonReprScript)
	cmd.Stdin = &stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.Bytes())
	}

	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for ; sc.Scan(); n++ {
		if n >= len(inputs) {
			t.Fatalf("python3 printed more than %d lines", len(inputs))
		}
		if got, want := echo.Quote(inputs[n]), sc.Text(); got != want {
			t.Errorf("input %d: Quote = %s, Python repr = %s", n, got, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(inputs) {
		t.Fatalf("python3 printed %d lines for %d inputs", n, len(inputs))
	}
}

func BenchmarkAppendQuote(b *testing.B) {
	// A typical 128-byte read: mostly text, some quotes and control bytes.
	in := bytes.Repeat([]byte("It's a \"test\"\t\x00\xff\\ line.\n"), 8)[:128]
	dst := make([]byte, 0, 4*len(in)+3)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		dst = echo.AppendQuote(dst[:0], in)
	}
	if len(dst) == 0 {
		b.Fatal("no output")
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1500 * time.Millisecond, "1.5s"},
		{2 * time.Minute, "2m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{echo.MaxTimeout, "10000h"},
		{time.Minute + 500*time.Millisecond, "1m0.5s"},
		{time.Hour + time.Second, "1h0m1s"},
		{-2 * time.Minute, "-2m"},
		{20 * time.Minute, "20m"},
	} {
		if got := echo.FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// FuzzFormatDuration: what FormatDuration writes parses back to the same
// duration, and is never longer than time.Duration's String.
func FuzzFormatDuration(f *testing.F) {
	for _, d := range []int64{0, 1, int64(time.Minute), int64(time.Hour), int64(echo.MaxTimeout), -int64(time.Hour), 1<<63 - 1, -1 << 63} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		d := time.Duration(n)
		s := echo.FormatDuration(d)
		back, err := time.ParseDuration(s)
		if err != nil || back != d {
			t.Fatalf("FormatDuration(%d) = %q, which parses as %v, %v", n, s, back, err)
		}
		if len(s) > len(d.String()) {
			t.Fatalf("FormatDuration(%d) = %q, longer than %q", n, s, d.String())
		}
	})
}

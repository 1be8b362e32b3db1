package echo_test

import (
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// Tests of the stage seam (stage.go) with the trivial stages of
// stage_export_test.go, on every variant: both engines.

// TestStagesOnTheWire: a header line, read in pieces, is not echoed; the
// greeting comes after it and before any echo, even when the echo's first
// bytes came with the header's last; the echo comes whole and in order,
// in slices with a gap between them.
func TestStagesOnTheWire(t *testing.T) {
	const gap = 20 * time.Millisecond
	cases := []struct {
		name   string
		header bool
		writes []string
	}{
		{"greeting", false, []string{"This is the message. ", "It will be sent ", "in parts."}},
		{"header in pieces, echo with its end", true, []string{"HD", "R from ", "test\nThis is the message. ", "It will be sent ", "in parts."}},
		{"header alone", true, []string{"HDR\n", "This is the message. It will be sent in parts."}},
	}
	for _, v := range variants {
		for _, tc := range cases {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				addr, _ := startVariant(t, v, nil, func(s *echo.Server) {
					if tc.header {
						echo.WithLineHeader(s, 64, ioTimeout)
					}
					echo.WithGreeting(s, "hello\n")
					echo.WithSlices(s, 5, gap)
				})
				c := dial(t, addr)
				c.SetDeadline(time.Now().Add(ioTimeout))
				start := time.Now()
				for _, w := range tc.writes {
					if _, err := c.Write([]byte(w)); err != nil {
						t.Fatal(err)
					}
				}
				c.CloseWrite()
				got, err := readAll(c)
				if want := "hello\n" + seedEcho; err != nil || string(got) != want {
					t.Fatalf("read %q, %v; want %q", got, err, want)
				}
				// 46 bytes in 5-byte slices, a gap before each but the
				// first of a chunk read: 9 gaps if read at once, 6 if read
				// 7 bytes at a time (BufferSize 7); at least 4 however the
				// reads fall.
				if d, least := time.Since(start), 4*gap; d < least {
					t.Errorf("echo took %v, want at least %v (4 gaps of %v)", d, least, gap)
				}
			})
		}
	}
}

// TestStageHeaderRefused: a header longer than its bound, or one that does
// not come within its time bound, closes the connection with nothing
// echoed, and both engines log why in the same words.
func TestStageHeaderRefused(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var logs syncBuffer
			addr, _ := startVariant(t, v, &logs, func(s *echo.Server) {
				echo.WithLineHeader(s, 8, 100*time.Millisecond)
			})
			long := dial(t, addr)
			long.Write([]byte("0123456789abcdef\nechoed?"))
			if got, _ := readAll(long); len(got) != 0 {
				t.Errorf("after an over-long header: %q, want nothing", got)
			}
			silent := dial(t, addr)
			if got, err := readAll(silent); len(got) != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("a peer that sends no header: %q, %v; want closed with nothing", got, err)
			}
			var warned []string
			for _, l := range parseLog(t, logs.String()) {
				if l.Level == "warn" {
					warned = append(warned, l.Message)
				}
			}
			want := []string{"open error: header longer than 8 bytes", "open error: i/o timeout"}
			if !slices.Equal(warned, want) {
				t.Errorf("warnings %q, want %q", warned, want)
			}
		})
	}
}

// TestStageBackPressure: a peer that reads none of its sliced echo stalls
// only itself; another connection is served meanwhile.
func TestStageBackPressure(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			addr, _ := startVariant(t, v, nil, func(s *echo.Server) {
				echo.WithSlices(s, 4<<10, time.Millisecond)
			})
			stuck := dial(t, addr)
			stuck.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			blob := make([]byte, 1<<20)
			sent := 0
			for i := 0; i < 64; i++ { // at most 64 MiB: until the socket is full
				n, err := stuck.Write(blob)
				sent += n
				if err != nil {
					break
				}
			}
			if sent >= 64<<20 {
				t.Fatalf("wrote %d bytes to a peer that reads nothing: no back-pressure", sent)
			}
			other := dial(t, addr)
			roundTrip(t, other, []byte("still served"))
		})
	}
}

// TestStageShutdownEndsHold: Shutdown's deadline ends a stage's wait: what
// it held is written at once, then the connection ends cleanly.
func TestStageShutdownEndsHold(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			addr, srv := startVariant(t, v, nil, func(s *echo.Server) {
				echo.WithSlices(s, 1, time.Hour)
			})
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(ioTimeout))
			c.Write([]byte("abc"))
			first := make([]byte, 1)
			if _, err := io.ReadFull(c, first); err != nil || first[0] != 'a' {
				t.Fatalf("first slice %q, %v; want %q", first, err, "a")
			}
			done := make(chan error, 1)
			go func() { done <- shutdown(srv, 50*time.Millisecond) }()
			rest, err := readAll(c)
			c.Close() // ends the server's lingering close
			if err != nil || string(rest) != "bc" {
				t.Fatalf("after Shutdown's deadline: %q, %v; want %q then end of stream", rest, err, "bc")
			}
			select {
			case <-done:
			case <-time.After(ioTimeout):
				t.Fatal("Shutdown did not return")
			}
		})
	}
}

// TestStageHoldIsNotAStall: the time a stage holds an echo counts neither
// as idle nor as a write stall; once the echo is written, the idle timeout
// still closes the connection.
func TestStageHoldIsNotAStall(t *testing.T) {
	const timeout, gap = 100 * time.Millisecond, 250 * time.Millisecond
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			addr, _ := startVariant(t, v, nil, func(s *echo.Server) {
				s.IdleTimeout, s.WriteTimeout = timeout, timeout
				echo.WithSlices(s, 2, gap)
			})
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(ioTimeout))
			c.Write([]byte("abcdef"))
			got := make([]byte, 6)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "abcdef" {
				t.Fatalf("echo %q, %v; want %q (held pieces must not time out)", got, err, "abcdef")
			}
			if rest, err := readAll(c); len(rest) != 0 || err != nil && !isReset(err) {
				t.Fatalf("after the echo: %q, %v; want the idle timeout to close it", rest, err)
			}
		})
	}
}

// TestStageObserverSeesWholeChunks: the observer sees each echoed chunk
// once, when its last slice is written, and neither the header nor the
// greeting.
func TestStageObserverSeesWholeChunks(t *testing.T) {
	msg := randomBytes(15, 40)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			rec := newRecorder()
			addr, _ := startVariant(t, v, nil, func(s *echo.Server) {
				s.Observer = rec
				echo.WithLineHeader(s, 64, ioTimeout)
				echo.WithGreeting(s, "hello\n")
				echo.WithSlices(s, 3, time.Millisecond)
			})
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(ioTimeout))
			c.Write(append([]byte("HDR\n"), msg...))
			c.CloseWrite()
			if got, err := readAll(c); err != nil || string(got) != "hello\n"+string(msg) {
				t.Fatalf("read %q, %v; want the greeting and the echo", got, err)
			}
			rec.waitClosed(t, echo.CloseEOF, 1)
			if r, s := rec.received.Load(), rec.sent.Load(); r != 40 || s != 40 {
				t.Errorf("observer: received %d, sent %d; want 40 and 40 (no header, no greeting)", r, s)
			}
			// One Sent per chunk read: 44 bytes with the header are at most 7
			// reads of 7 (BufferSize 7); per 3-byte slice it would be 14.
			if n := rec.chunks.Load(); n < 1 || n > 7 {
				t.Errorf("observer: %d chunks sent, want one per read (1 to 7), not one per slice", n)
			}
		})
	}
}

// TestStageGreetingLargerThanTheSocket: a greeting the socket cannot take
// at once is written as the peer reads it, and the echo of what came with
// the header's end waits for it: nothing is lost or reordered.
func TestStageGreetingLargerThanTheSocket(t *testing.T) {
	greeting := strings.Repeat("g", 8<<20) + "\n"
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			addr, _ := startVariant(t, v, nil, func(s *echo.Server) {
				echo.WithLineHeader(s, 64, ioTimeout)
				echo.WithGreeting(s, greeting)
			})
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := c.Write([]byte("HDR\nsent with the header")); err != nil {
				t.Fatal(err)
			}
			c.CloseWrite()
			got, err := readAll(c)
			if want := greeting + "sent with the header"; err != nil || string(got) != want {
				t.Fatalf("read %d bytes (%q...), %v; want the greeting, then the echo", len(got), got[max(len(got)-30, 0):], err)
			}
		})
	}
}

package echo

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
)

// TestLogDataDisabledDoesNotAllocate: with data logging off (the default,
// and any level above debug), logging a chunk must cost no allocation, so
// that it can sit in the echo loop. This counts allocations; it does not
// time anything.
func TestLogDataDisabledDoesNotAllocate(t *testing.T) {
	data := bytes.Repeat([]byte("It's \"data\"\x00\xff\n"), 8)
	tests := []struct {
		name   string
		logger zerolog.Logger
		allocs bool
	}{
		{"zero Logger", zerolog.Logger{}, false},
		{"info level", zerolog.New(io.Discard).Level(zerolog.InfoLevel), false},
		{"error level", zerolog.New(io.Discard).Level(zerolog.ErrorLevel), false},
		{"disabled", zerolog.Nop(), false},
		// The control: when the line is written, formatting it allocates,
		// which shows the count above would notice a regression.
		{"debug level", zerolog.New(io.Discard).Level(zerolog.DebugLevel), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{srv: &Server{Logger: tt.logger}, name: "echo_127.0.0.1_1", peer: "127.0.0.1:1"}
			got := testing.AllocsPerRun(100, func() {
				c.logData("received ", data)
				c.logData("sent ", data)
			})
			if tt.allocs && got == 0 {
				t.Errorf("logData at debug level: 0 allocations; the measurement is broken")
			}
			if !tt.allocs && got != 0 {
				t.Errorf("logData with debug disabled: %v allocations per run, want 0", got)
			}
		})
	}
}

func TestLogDataFormat(t *testing.T) {
	var buf bytes.Buffer
	c := &conn{srv: &Server{Logger: zerolog.New(&buf)}, name: "echo_::1_64624", peer: "[::1]:64624"}
	c.logData("received ", []byte("in parts.\n"))
	want := `{"level":"debug","logger":"echo_::1_64624","peer":"[::1]:64624","bytes":10,"message":"received b'in parts.\\n'"}` + "\n"
	if buf.String() != want {
		t.Errorf("logData wrote\n%s\nwant\n%s", buf.String(), want)
	}
}

// newVerifier returns a verifier fed with chunks, as the Client's writer
// feeds it, then half-closed, recycling into a channel the test can
// inspect.
func newVerifier(chunks ...[]byte) (*verifier, chan []byte) {
	pending := make(chan []byte, len(chunks))
	for _, c := range chunks {
		pending <- c
	}
	close(pending)
	recycle := make(chan []byte, len(chunks))
	v := &verifier{pending: pending, recycle: recycle, done: make(chan struct{})}
	v.halfClosed.Store(true)
	return v, recycle
}

// TestVerifierServerEndsFirst: an end of stream before the sender
// half-closed is the server's: the echo is short (or never began), and
// finish does not wait for input still to come; a byte with no chunk
// pending is extra at once.
func TestVerifierServerEndsFirst(t *testing.T) {
	pending := make(chan []byte, 4) // open: the input goes on
	v := &verifier{pending: pending, done: make(chan struct{})}
	if err := v.finish(); !errors.Is(err, ErrClosedBeforeEcho) {
		t.Errorf("finish before any echo = %v, want ErrClosedBeforeEcho", err)
	}
	pending <- []byte("abc")
	if err := v.check([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	var me *MismatchError
	if err := v.check([]byte("!")); !errors.As(err, &me) || !me.Extra || me.Offset != 3 {
		t.Errorf("check of a byte nothing sent = %v, want it extra at 3", err)
	}
	if err := v.finish(); !errors.As(err, &me) || !me.Short || me.Offset != 3 {
		t.Errorf("finish = %v, want a short echo at 3", err)
	}
}

func TestVerifier(t *testing.T) {
	tests := []struct {
		name     string
		chunks   []string
		received []string
		want     *MismatchError // from check or finish
		offset   int64
		recycled int
	}{
		{"exact", []string{"abc", "def"}, []string{"abcdef"}, nil, 6, 2},
		{"split differently", []string{"ab", "", "cdef"}, []string{"a", "bcd", "e", "f"}, nil, 6, 3},
		{"nothing", []string{}, []string{}, nil, 0, 0},
		{"only empty chunks", []string{"", ""}, nil, nil, 0, 2},
		{"differs in second chunk", []string{"abc", "def"}, []string{"abcdXf"}, &MismatchError{Offset: 4, Sent: 'e', Received: 'X'}, 3, 1},
		{"differs at first byte", []string{"abc"}, []string{"x"}, &MismatchError{Offset: 0, Sent: 'a', Received: 'x'}, 0, 0},
		{"short", []string{"abc", "def"}, []string{"abcd"}, &MismatchError{Offset: 4, Short: true}, 4, 1},
		{"extra", []string{"abc"}, []string{"abc", "!"}, &MismatchError{Offset: 3, Received: '!', Extra: true}, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chunks [][]byte
			for _, c := range tt.chunks {
				chunks = append(chunks, []byte(c))
			}
			v, recycle := newVerifier(chunks...)
			var err error
			for _, r := range tt.received {
				if err = v.check([]byte(r)); err != nil {
					break
				}
			}
			if err == nil {
				err = v.finish()
			}
			var me *MismatchError
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("verify = %v, want success", err)
			case tt.want != nil && !errors.As(err, &me):
				t.Errorf("verify = %v, want %+v", err, *tt.want)
			case tt.want != nil && *me != *tt.want:
				t.Errorf("verify = %+v, want %+v", *me, *tt.want)
			}
			if v.offset != tt.offset {
				t.Errorf("offset = %d, want %d", v.offset, tt.offset)
			}
			if len(recycle) != tt.recycled {
				t.Errorf("%d chunks recycled, want %d", len(recycle), tt.recycled)
			}
		})
	}
}

// FuzzAddrPortNames checks the logger name and peer made in one buffer
// against the plain way: "echo_" + host + "_" + port and
// net.JoinHostPort, the host as ipString writes it, for IPv4, IPv6,
// IPv4-mapped and zoned addresses and the invalid one.
func FuzzAddrPortNames(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, uint16(42830), "")
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}, uint16(1), "")
	f.Add([]byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(65535), "eth0")
	f.Add([]byte{0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, uint16(0), "")
	f.Add([]byte{}, uint16(7), "")
	f.Fuzz(func(t *testing.T, ip []byte, port uint16, zone string) {
		addr, ok := netip.AddrFromSlice(ip)
		if ok && addr.Is6() && zone != "" {
			addr = addr.WithZone(zone)
		}
		ap := netip.AddrPortFrom(addr, port)
		host, p := ipString(ap.Addr()), strconv.Itoa(int(port))
		wantName, wantPeer := "echo_"+host+"_"+p, net.JoinHostPort(host, p)
		if name, peer := addrPortNames(ap); name != wantName || peer != wantPeer {
			t.Errorf("addrPortNames(%v) = %q, %q; want %q, %q", ap, name, peer, wantName, wantPeer)
		}
	})
}

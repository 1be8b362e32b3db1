package echo

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestParsePacketRate(t *testing.T) {
	tests := []struct {
		in   string
		want PacketRate
		str  string // its String; "" for in
		err  bool
	}{
		{in: "100/s,256KiB/s", want: PacketRate{Datagrams: 100, Bytes: 256 << 10}},
		{in: " 100/s , 256kib/s ", want: PacketRate{Datagrams: 100, Bytes: 256 << 10}, str: "100/s,256KiB/s"},
		{in: "0", want: PacketRate{}},
		{in: " 0 ", want: PacketRate{}, str: "0"},
		{in: "100/s", want: PacketRate{Datagrams: 100}},
		{in: "64KiB/s", want: PacketRate{Bytes: 64 << 10}},
		{in: "1000B/s", want: PacketRate{Bytes: 1000}},
		{in: "2KB/s", want: PacketRate{Bytes: 2000}, str: "2000B/s"},
		{in: "1MB/s", want: PacketRate{Bytes: 1e6}, str: "1000000B/s"},
		{in: "1GiB/s", want: PacketRate{Bytes: 1 << 30}},
		{in: "2048MiB/s", err: true}, // above 1GiB/s
		{in: "1GB/s", want: PacketRate{Bytes: 1e9}, str: "1000000000B/s"},
		{in: "1024KiB/s", want: PacketRate{Bytes: 1 << 20}, str: "1MiB/s"},
		{in: "10000000/s", want: PacketRate{Datagrams: 10_000_000}},
		{in: "10000001/s", err: true},
		{in: "", err: true},
		{in: "0/s", err: true},
		{in: "-1/s", err: true},
		{in: "+1/s", err: true},
		{in: "100", err: true},
		{in: "100/m", err: true},
		{in: "1.5/s", err: true},
		{in: "100/s,200/s", err: true},
		{in: "256KiB/s,100/s", err: true}, // datagrams first
		{in: "1KiB/s,2KiB/s", err: true},
		{in: "100/s,256KiB/s,1/s", err: true},
		{in: "100/s,", err: true},
		{in: "100/s,256XB/s", err: true},
		{in: "99999999999999999999999/s", err: true},
		{in: "off", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePacketRate(tt.in)
			if tt.err {
				if err == nil || !errors.Is(err, ErrInvalidPacketRate) {
					t.Fatalf("ParsePacketRate(%q) = %v, %v; want an ErrInvalidPacketRate", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePacketRate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if got.String() != str {
				t.Errorf("String() = %q, want %q", got.String(), str)
			}
		})
	}
}

// FuzzParsePacketRate: whatever parses has a String that parses back to
// the same rate, within bounds, and ParsePacketRate never panics.
func FuzzParsePacketRate(f *testing.F) {
	for _, s := range []string{"100/s,256KiB/s", "0", "1/s", "1B/s", "3MB/s", "1GiB/s", "10/s,1kb/s", ",", "1/s,1/s", "007/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePacketRate(s)
		if err != nil {
			return
		}
		if err := r.validate(); err != nil {
			t.Fatalf("ParsePacketRate(%q) = %+v, out of bounds: %v", s, r, err)
		}
		back, err := ParsePacketRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParsePacketRate(%q) = %+v; its String %q parses as %+v, %v", s, r, r.String(), back, err)
		}
	})
}

// TestRateTable runs steps through a table with a fake clock: each step
// is a datagram of n bytes from src at a time after the start.
func TestRateTable(t *testing.T) {
	type step struct {
		at   time.Duration
		src  string
		n    int
		want DropReason
		pass bool
	}
	a, b, c := "192.0.2.1", "192.0.2.2", "2001:db8::3"
	tests := []struct {
		name     string
		rate     PacketRate
		capacity int
		steps    []step
	}{
		{"datagrams, a burst of one second's worth", PacketRate{Datagrams: 3}, 10, []step{
			{0, a, 1, 0, true}, {0, a, 1, 0, true}, {0, a, 0, 0, true}, // empty datagrams count
			{0, a, 1, DropRateLimit, false},
			{400 * time.Millisecond, a, 1, 0, true}, // 1.2 tokens back
			{400 * time.Millisecond, a, 1, DropRateLimit, false},
			{2 * time.Second, a, 1, 0, true},
		}},
		{"sources apart", PacketRate{Datagrams: 1}, 10, []step{
			{0, a, 1, 0, true}, {0, a, 1, DropRateLimit, false},
			{0, b, 1, 0, true}, {0, c, 1, 0, true}, {0, c, 1, DropRateLimit, false},
		}},
		{"bytes", PacketRate{Bytes: 100_000}, 10, []step{
			{0, a, 65507, 0, true},
			{0, a, 65507, DropRateLimit, false}, // 34493 left
			{0, a, 30000, 0, true},
			{time.Second, a, 65507, 0, true},
		}},
		{"bytes below one datagram a second: the bucket holds one", PacketRate{Bytes: 1000}, 10, []step{
			{0, a, 65507, 0, true},
			{time.Second, a, 2000, DropRateLimit, false}, // 1029 bytes back
			{66 * time.Second, a, 65507, 0, true},
		}},
		{"both: the first to run out drops", PacketRate{Datagrams: 100, Bytes: 1 << 16}, 10, []step{
			{0, a, 65536, 0, true},
			{0, a, 1, DropRateLimit, false},
		}},
		{"full table: new sources wait for an entry to expire", PacketRate{Datagrams: 10}, 2, []step{
			{0, a, 1, 0, true},
			{500 * time.Millisecond, b, 1, 0, true},
			{500 * time.Millisecond, c, 1, DropRateTableFull, false},
			{500 * time.Millisecond, a, 1, 0, true}, // known sources go on
			{1400 * time.Millisecond, c, 1, DropRateTableFull, false},
			{1600 * time.Millisecond, c, 1, 0, true}, // b left alone for 1.1s: expired
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRateTable(tt.rate, tt.capacity)
			start := time.Unix(1_000_000, 0)
			for i, st := range tt.steps {
				got, pass := rt.allow(netip.MustParseAddr(st.src), st.n, start.Add(st.at))
				if pass != st.pass || (!pass && got != st.want) {
					t.Fatalf("step %d (%v, %s, %d bytes): %v, %v; want %v, %v", i, st.at, st.src, st.n, got, pass, st.want, st.pass)
				}
			}
		})
	}
}

// TestRateTableBounded: a flood from ever new (spoofed) sources never
// holds more than the table's capacity, and quiet sources leave it.
func TestRateTableBounded(t *testing.T) {
	rt := newRateTable(PacketRate{Datagrams: 100, Bytes: 256 << 10}, 1000)
	start := time.Unix(1_000_000, 0)
	refused := 0
	for i := range 5000 {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if r, ok := rt.allow(src, 100, start.Add(time.Duration(i)*time.Microsecond)); !ok {
			if r != DropRateTableFull {
				t.Fatalf("source %d: %v; want rate-table-full", i, r)
			}
			refused++
		}
	}
	if n := rt.len(); n != 1000 || refused != 4000 {
		t.Errorf("%d sources held, %d refused; want 1000 and 4000", n, refused)
	}
	// Later, every entry has refilled: new sources push them out.
	later := start.Add(time.Minute)
	for i := range 500 {
		src := netip.AddrFrom4([4]byte{11, 0, byte(i >> 8), byte(i)})
		if r, ok := rt.allow(src, 100, later); !ok {
			t.Fatalf("new source %d after a minute: %v", i, r)
		}
	}
	if n := rt.len(); n > 1000 {
		t.Errorf("%d sources held; want at most 1000", n)
	}
}

func TestRateTableOff(t *testing.T) {
	if rt := newRateTable(PacketRate{}, 10); rt != nil {
		t.Errorf("newRateTable of the zero PacketRate = %+v; want nil (no limit)", rt)
	}
}

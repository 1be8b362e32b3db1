package echo

import (
	"container/list"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The per-source rate that ServePacket answers when Server.UDPRatePerSource
// is nil: 100 datagrams and 256 KiB a second, with a burst of one second's
// worth. docs/udp.md gives the reasoning: far above what an interactive
// user sends, far below what hurts the owner of a spoofed address.
const (
	DefaultUDPDatagramsPerSource = 100
	DefaultUDPBytesPerSource     = 256 << 10
)

// Bounds of a PacketRate's fields.
const (
	MaxUDPDatagramsPerSource = 10_000_000
	MaxUDPBytesPerSource     = 1 << 30
)

// maxRateSources bounds the per-source rate table: about 300 bytes each,
// 2.5 MiB in all. Past it a new source is dropped (DropRateTableFull)
// until an entry expires.
const maxRateSources = 8192

// A PacketRate bounds what ServePacket answers to one source IP address:
// at most Datagrams datagrams and Bytes bytes a second, each a token bucket
// that holds one second's worth (the byte bucket at least one datagram of
// the largest size, 64 KiB), so that a burst of that much is answered at
// once. A zero field does not limit that quantity; the zero PacketRate
// limits nothing. Its text form, which ParsePacketRate reads, is
// "100/s,256KiB/s" (either part alone limits only that quantity) or "0".
type PacketRate struct {
	// Datagrams is the most datagrams a second answered to one source.
	Datagrams int
	// Bytes is the most bytes a second answered to one source.
	Bytes int
}

// packetRateSyntax is the reason ParsePacketRate gives for any bad input.
const packetRateSyntax = "want 0 (no limit) or DATAGRAMS/s,BYTES/s such as 100/s,256KiB/s (units B, KB, KiB, MB, MiB, GB, GiB)"

// byteUnits are the units of a byte rate, largest first: String writes
// the largest IEC unit that divides the rate.
var byteUnits = []struct {
	name string
	n    int
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// splitCount splits s into the number its digits start with, from 1, and
// what follows them (a unit, untrimmed); ok is false when s does not start
// with such a number.
func splitCount(s string) (n int64, unit string, ok bool) {
	end := strings.IndexFunc(s, func(c rune) bool { return c < '0' || c > '9' })
	if end < 0 {
		end = len(s)
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil || n < 1 {
		return 0, "", false
	}
	return n, s[end:], true
}

// unitSize returns how many bytes unit (one of byteUnits, in any case)
// is, or 0 for another unit.
func unitSize(unit string) int64 {
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			return int64(u.n)
		}
	}
	return 0
}

// ParsePacketRate parses the text form of a PacketRate: "0" for no limit,
// or one or two comma-separated rates, a number of datagrams a second
// ("100/s") and a number of bytes a second ("256KiB/s"; units B, KB,
// KiB, MB, MiB, GB and GiB, in any case), datagrams first.
func ParsePacketRate(s string) (PacketRate, error) {
	var r PacketRate
	t := strings.TrimSpace(s)
	if t == "0" {
		return r, nil
	}
	bad := func(why string) (PacketRate, error) {
		return PacketRate{}, fmt.Errorf("%w %q: %s; %s", ErrInvalidPacketRate, s, why, packetRateSyntax)
	}
	parts := strings.Split(t, ",")
	if len(parts) > 2 {
		return bad("more than two rates")
	}
	for i, part := range parts {
		part = strings.TrimSpace(part)
		num, ok := strings.CutSuffix(part, "/s")
		if !ok {
			return bad(fmt.Sprintf("%q does not end in /s", part))
		}
		n64, unit, ok := splitCount(num)
		if !ok {
			return bad(fmt.Sprintf("%q is not a whole number from 1", num))
		}
		n := int(min(n64, math.MaxInt32)) // past any limit below, either way
		if unit == "" {
			if i > 0 || r.Datagrams > 0 {
				return bad("the datagram rate comes first, once")
			}
			if n > MaxUDPDatagramsPerSource {
				return bad(fmt.Sprintf("more than %d datagrams a second", MaxUDPDatagramsPerSource))
			}
			r.Datagrams = n
			continue
		}
		size := int(unitSize(unit))
		switch {
		case size == 0:
			return bad(fmt.Sprintf("unknown unit %q", unit))
		case r.Bytes > 0:
			return bad("two byte rates")
		case n > MaxUDPBytesPerSource/size:
			return bad("more than 1GiB a second")
		}
		r.Bytes = n * size
	}
	return r, nil
}

// String returns the text form of r that ParsePacketRate reads: "0" when
// r limits nothing, else "100/s,256KiB/s", "100/s" or "256KiB/s".
func (r PacketRate) String() string {
	var parts []string
	if r.Datagrams > 0 {
		parts = append(parts, strconv.Itoa(r.Datagrams)+"/s")
	}
	if r.Bytes > 0 {
		for _, u := range byteUnits {
			if r.Bytes%u.n == 0 && (u.n == 1 || strings.HasSuffix(u.name, "iB")) {
				parts = append(parts, strconv.Itoa(r.Bytes/u.n)+u.name+"/s")
				break
			}
		}
	}
	if parts == nil {
		return "0"
	}
	return strings.Join(parts, ",")
}

// validate checks r's fields against their bounds.
func (r PacketRate) validate() error {
	if r.Datagrams < 0 || r.Datagrams > MaxUDPDatagramsPerSource || r.Bytes < 0 || r.Bytes > MaxUDPBytesPerSource {
		return fmt.Errorf("%w: %d datagrams and %d bytes a second (each must be between 0, no limit, and %d and %d)",
			ErrInvalidPacketRate, r.Datagrams, r.Bytes, MaxUDPDatagramsPerSource, MaxUDPBytesPerSource)
	}
	return nil
}

// rateTable holds a token bucket pair for each source address recently
// seen, at most max of them, most recently seen first. An entry left
// alone for refill has full buckets again, the state of a new one, so it
// is dropped then without loss: spoofed sources cost memory only while
// they send, and never more than max entries.
type rateTable struct {
	rate   PacketRate
	refill time.Duration
	max    int

	mu    sync.Mutex
	bySrc map[netip.Addr]*list.Element
	lru   list.List // of *rateEntry, most recently seen at the front
}

// rateEntry is one source's buckets; nil for a quantity not limited.
type rateEntry struct {
	src             netip.Addr
	seen            time.Time
	datagrams, data *rate.Limiter
}

// newRateTable returns a table for r, or nil if r limits nothing.
func newRateTable(r PacketRate, capacity int) *rateTable {
	if r.Datagrams == 0 && r.Bytes == 0 {
		return nil
	}
	t := &rateTable{rate: r, refill: time.Second, max: capacity, bySrc: make(map[netip.Addr]*list.Element)}
	if r.Bytes > 0 {
		t.refill = max(t.refill, time.Duration(t.byteBurst())*time.Second/time.Duration(r.Bytes))
	}
	return t
}

// byteBurst is the size of the byte bucket: a second's worth, and at least
// the largest datagram, which a smaller bucket would never let through.
func (t *rateTable) byteBurst() int { return max(t.rate.Bytes, packetBufferSize) }

// allow takes one datagram of n bytes from src's buckets at now. It
// reports false, with the reason, when src has used up its rate or is new
// and the table is full.
func (t *rateTable) allow(src netip.Addr, n int, now time.Time) (DropReason, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.bySrc[src]
	var e *rateEntry
	if ok {
		e = el.Value.(*rateEntry)
		t.lru.MoveToFront(el)
	} else {
		t.expire(now, 2)
		if len(t.bySrc) >= t.max {
			return DropRateTableFull, false
		}
		e = &rateEntry{src: src}
		if t.rate.Datagrams > 0 {
			e.datagrams = rate.NewLimiter(rate.Limit(t.rate.Datagrams), t.rate.Datagrams)
		}
		if t.rate.Bytes > 0 {
			e.data = rate.NewLimiter(rate.Limit(t.rate.Bytes), t.byteBurst())
		}
		t.bySrc[src] = t.lru.PushFront(e)
	}
	e.seen = now
	// A datagram refused for its bytes still spends its datagram token:
	// that only makes the limit stricter.
	if (e.datagrams != nil && !e.datagrams.AllowN(now, 1)) || (e.data != nil && !e.data.AllowN(now, n)) {
		return DropRateLimit, false
	}
	return 0, true
}

// expire drops up to n entries, the least recently seen, that have been
// left alone for refill. Entries are in the order they were last seen, so
// if the last one is not expired, none is.
func (t *rateTable) expire(now time.Time, n int) {
	for range n {
		el := t.lru.Back()
		if el == nil || now.Sub(el.Value.(*rateEntry).seen) < t.refill {
			return
		}
		delete(t.bySrc, el.Value.(*rateEntry).src)
		t.lru.Remove(el)
	}
}

// len returns how many sources the table holds.
func (t *rateTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.bySrc)
}

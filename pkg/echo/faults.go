package echo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Faults makes a Server misbehave on purpose, on its stream connections
// (TCP, TLS, Unix sockets) and its UDP answers, so that the clients,
// proxies and balancers behind it can be tested against a slow,
// throttled, cut-off, lossy or lying server (docs/faults.md). The zero
// value injects no fault. A Server whose Faults is nil, and none of whose
// listeners sets faults of its own (ListenerOptions.Faults), pays nothing
// for them; a zero one, which Server.SetFaults may change later, costs
// each connection (each datagram) a check.
//
// When a connection opens, Share decides whether faults apply to it; if
// they do, every fault set applies to it. Each fault, when it first acts
// on a connection, is logged once at info on the connection's logger
// ("fault: reset after 1024 bytes") and reported to the ConnObserver if it
// is a FaultObserver.
//
// On a UDP listener (ServePacket) Delay, Jitter, Corrupt, Drop,
// Duplicate and Reorder act on each answer, and Share picks the
// datagrams rather than connections; the other faults act on stream
// connections only, and Drop, Duplicate and Reorder on UDP only.
//
// A Faults is a plain value: a copy may be given to another Server; one
// listener may set some keys over it (ListenerOptions.Faults). Its text
// form is a set of keys, each parsed by Set: "delay", "jitter", "rate",
// "slice", "slice-delay", "close-after", "reset-after", "stall-after",
// "corrupt", "refuse", "drop", "duplicate", "reorder" and "share"
// (FaultKeys).
type Faults struct {
	// Delay holds each echo for that long after it was read (Jitter
	// more or less): a slow server. Order is kept: a connection reads
	// nothing more until its last echo is written.
	Delay time.Duration
	// Jitter adds to Delay a uniformly random amount between -Jitter and
	// +Jitter, drawn for each echo (a delay never goes below zero).
	Jitter time.Duration

	// Rate paces each connection's echo to that many bytes a second, a
	// token bucket that holds a tenth of a second's worth (at most 64
	// KiB, at least one byte). Zero: no limit.
	Rate int

	// Slice writes each echo Slice bytes at a time, waiting SliceDelay
	// between the pieces of one echo: it tests a client's reassembly.
	// Zero: echoes are written whole.
	Slice      int
	SliceDelay time.Duration

	// CloseAfter, once that many bytes are echoed or that long after the
	// connection opened, writes what is owed up to that point, sends FIN
	// and closes (discarding what the peer still sends, for up to a
	// second, so that it reads the FIN rather than a reset).
	CloseAfter FaultAfter
	// ResetAfter resets the connection (an RST: SO_LINGER 0) once that
	// many bytes are echoed or that long after it opened, without writing
	// what is owed. (A Unix socket has no RST: its peer sees the end of
	// the stream, or ECONNRESET if it had sent bytes not yet read.)
	ResetAfter FaultAfter
	// StallAfter, once that many bytes are echoed or that long after the
	// connection opened, stops reading and echoing but keeps the
	// connection open: a black hole. Server.IdleTimeout, if set, still
	// closes it; so do Shutdown and Close.
	StallAfter FaultAfter

	// Corrupt is the probability, from 0 to 1, that one bit of an echoed
	// chunk (what one read returned) is flipped.
	Corrupt float64
	// Refuse is the probability, from 0 to 1, that a connection is reset
	// as soon as it is accepted (on TLS, once its handshake is done).
	Refuse float64

	// Drop is the probability, from 0 to 1, that a datagram is left
	// unanswered (UDP only).
	Drop float64
	// Duplicate is the probability, from 0 to 1, that a datagram is
	// answered twice, with the same bytes, to its sender (UDP only). The
	// second answer passes the per-source rate limit
	// (Server.UDPRatePerSource) like any answer, and is dropped when
	// over it: at most two answers, each the size of the datagram.
	Duplicate float64
	// Reorder is the probability, from 0 to 1, that a datagram's answer
	// is held back and sent right after the listener's next answer, to
	// whichever sender, or MaxReorderHold after it was held if no answer
	// follows by then (UDP only). At shutdown a held answer is sent, not
	// lost.
	Reorder float64

	// Share is the fraction of connections, drawn at random as each
	// opens, that the faults apply to: from 0 (excluded) to 1. Zero means
	// 1: every connection.
	Share float64

	// Rand, if not nil, is the source of the random decisions (Share,
	// Refuse, Jitter, Corrupt, and on UDP every fault), for reproducible
	// tests; it is called once or twice per connection (and for each
	// datagram), under a lock. Nil: math/rand/v2's.
	Rand rand.Source
}

// FaultAfter is when an ending fault (Faults.CloseAfter, ResetAfter,
// StallAfter) acts: after Bytes bytes echoed, or Time after the connection
// opened. At most one of the two is set; the zero value never acts. Its
// text form, which ParseFaultAfter reads, is a byte count ("1024",
// "64KiB") or a duration ("2s").
type FaultAfter struct {
	// Bytes is the number of bytes echoed, exactly, before it acts.
	Bytes int64
	// Time is how long after the connection opened it acts.
	Time time.Duration
}

// IsZero reports whether a never acts.
func (a FaultAfter) IsZero() bool { return a.Bytes <= 0 && a.Time <= 0 }

// String returns a's text form: "1024", "64KiB", "2s", or "0" when zero.
func (a FaultAfter) String() string {
	switch {
	case a.Bytes > 0:
		return formatBytes(a.Bytes)
	case a.Time > 0:
		return a.Time.String()
	}
	return "0"
}

// describe says when a acts, for the log: "after 1024 bytes", "2s
// after opening".
func (a FaultAfter) describe() string {
	if a.Bytes > 0 {
		return fmt.Sprintf("after %d bytes", a.Bytes)
	}
	return fmt.Sprintf("%v after opening", a.Time)
}

// maxFaultBytes bounds a fault's byte counts and rate: 1 TiB.
const maxFaultBytes = 1 << 40

// ParseFaultAfter parses a FaultAfter: "0" (never), a byte count from 1
// ("1024", "64KiB"; units B, KB, KiB, MB, MiB, GB, GiB, in any case) or a
// duration as time.ParseDuration reads it ("2s", "1m30s").
func ParseFaultAfter(s string) (FaultAfter, error) {
	t := strings.TrimSpace(s)
	if isZeroAmount(t) {
		return FaultAfter{}, nil
	}
	if n, err := parseBytes(t); err == nil {
		return FaultAfter{Bytes: n}, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil || d <= 0 || d > MaxTimeout {
		return FaultAfter{}, fmt.Errorf("%q is neither a byte count (1024, 64KiB) nor a duration above 0 (2s) and up to %s", s, FormatDuration(MaxTimeout))
	}
	return FaultAfter{Time: d}, nil
}

// isZeroAmount reports whether t is zero, the value that turns a fault
// off: 0, or 0 of a byte unit (0B, 0KiB) or of a duration (0s, 0ms).
func isZeroAmount(t string) bool {
	end := strings.IndexFunc(t, func(c rune) bool { return c != '0' })
	if end == 0 {
		return false
	}
	if end < 0 {
		return true
	}
	if unit := strings.TrimSpace(t[end:]); unitSize(unit) > 0 {
		return true
	}
	d, err := time.ParseDuration(t)
	return err == nil && d == 0
}

// parseBytes parses a byte count from 1: digits and an optional unit.
func parseBytes(s string) (int64, error) {
	n, unit, ok := splitCount(s)
	if !ok {
		return 0, fmt.Errorf("%q is not a byte count from 1", s)
	}
	size := int64(1)
	if unit = strings.TrimSpace(unit); unit != "" {
		if strings.HasPrefix(unit, ".") {
			return 0, fmt.Errorf("%q is not a whole number of bytes", s)
		}
		if size = unitSize(unit); size == 0 {
			return 0, fmt.Errorf("%q: unknown unit %q (B, KB, KiB, MB, MiB, GB, GiB)", s, unit)
		}
	}
	if n > maxFaultBytes/size {
		return 0, fmt.Errorf("%q is more than 1TiB", s)
	}
	return n * size, nil
}

// formatBytes writes n with the largest IEC unit that divides it.
func formatBytes(n int64) string {
	for _, u := range byteUnits {
		if n%int64(u.n) == 0 && (u.n == 1 || strings.HasSuffix(u.name, "iB")) {
			if u.n == 1 {
				return strconv.FormatInt(n, 10)
			}
			return strconv.FormatInt(n/int64(u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// faultKey is one key of the text form of Faults: how Set parses it, how
// Settings shows it ("" when it is unset), what it does (the help of its
// flag and address query key) and the networks it acts on.
type faultKey struct {
	name     string
	set      func(f *Faults, v string) error
	get      func(f *Faults) string
	usage    string
	networks []string // nil: every one
}

// packetNetworks are the networks of packet listeners.
var packetNetworks = []string{NetworkUDP}

// faultKeys are the keys of Faults, in the order Settings lists them: the
// one table that parses and shows a fault configuration.
var faultKeys = []faultKey{
	{"delay", func(f *Faults, v string) (err error) { f.Delay, err = parseFaultDuration(v); return },
		func(f *Faults) string { return showDuration(f.Delay) },
		"hold each echo (each UDP answer) for this `duration` after it is read (50ms)", nil},
	{"jitter", func(f *Faults, v string) (err error) { f.Jitter, err = parseFaultDuration(v); return },
		func(f *Faults) string { return showDuration(f.Jitter) },
		"vary the delay of each echo at random by up to this `duration` either way", nil},
	{"rate", func(f *Faults, v string) (err error) { f.Rate, err = parseFaultRate(v); return },
		func(f *Faults) string { return showCount(int64(f.Rate), "/s") },
		"pace each connection's echo to this `rate` in bytes a second (256KiB/s)", streamNetworks},
	{"slice", func(f *Faults, v string) (err error) { f.Slice, err = parseFaultCount(v); return },
		func(f *Faults) string { return showCount(int64(f.Slice), "") },
		"write each echo this many `bytes` at a time", streamNetworks},
	{"slice-delay", func(f *Faults, v string) (err error) { f.SliceDelay, err = parseFaultDuration(v); return },
		func(f *Faults) string { return showDuration(f.SliceDelay) },
		"wait this `duration` between the slices of an echo", streamNetworks},
	{"close-after", func(f *Faults, v string) (err error) { f.CloseAfter, err = ParseFaultAfter(v); return },
		func(f *Faults) string { return showAfter(f.CloseAfter) },
		"after N bytes echoed (1024, 64KiB) or D after opening (2s), write what is owed up to then, send FIN and close (`N|D`)", streamNetworks},
	{"reset-after", func(f *Faults, v string) (err error) { f.ResetAfter, err = ParseFaultAfter(v); return },
		func(f *Faults) string { return showAfter(f.ResetAfter) },
		"after N bytes echoed or D after opening, reset the connection (RST) without writing what is owed (`N|D`)", streamNetworks},
	{"stall-after", func(f *Faults, v string) (err error) { f.StallAfter, err = ParseFaultAfter(v); return },
		func(f *Faults) string { return showAfter(f.StallAfter) },
		"after N bytes echoed or D after opening, stop reading and echoing, keeping the connection open; --idle-timeout still applies (`N|D`)", streamNetworks},
	{"corrupt", func(f *Faults, v string) (err error) { f.Corrupt, err = parseProbability(v, false); return },
		func(f *Faults) string { return showProbability(f.Corrupt, 0) },
		"flip one bit of an echoed chunk (a UDP answer) with this `probability` (0.01 or 1%)", nil},
	{"refuse", func(f *Faults, v string) (err error) { f.Refuse, err = parseProbability(v, false); return },
		func(f *Faults) string { return showProbability(f.Refuse, 0) },
		"reset this `fraction` of connections as soon as they are accepted (TLS: after the handshake)", streamNetworks},
	{"drop", func(f *Faults, v string) (err error) { f.Drop, err = parseProbability(v, false); return },
		func(f *Faults) string { return showProbability(f.Drop, 0) },
		"udp:// addresses: leave this `fraction` of datagrams unanswered", packetNetworks},
	{"duplicate", func(f *Faults, v string) (err error) { f.Duplicate, err = parseProbability(v, false); return },
		func(f *Faults) string { return showProbability(f.Duplicate, 0) },
		"udp:// addresses: answer this `fraction` of datagrams twice (the second answer counts against --udp-rate-per-source)", packetNetworks},
	{"reorder", func(f *Faults, v string) (err error) { f.Reorder, err = parseProbability(v, false); return },
		func(f *Faults) string { return showProbability(f.Reorder, 0) },
		"udp:// addresses: hold back this `fraction` of answers until the listener's next answer is sent (at most 100ms)", packetNetworks},
	{"share", func(f *Faults, v string) (err error) { f.Share, err = parseProbability(v, true); return },
		func(f *Faults) string { return showProbability(f.Share, 1) },
		"apply the faults to this `fraction` of connections (of datagrams on udp://), drawn at random", nil},
}

// FaultKeys returns the keys of the text form of Faults, which Set
// parses, in the order Settings lists them.
func FaultKeys() []string {
	names := make([]string, len(faultKeys))
	for i, k := range faultKeys {
		names[i] = k.name
	}
	return names
}

// Set parses value as the fault named key (one of FaultKeys, such as
// "delay" or "reset-after") into f. An empty value leaves the fault
// unset. The error, wrapping ErrInvalidFault, names the key and says what
// it wants.
func (f *Faults) Set(key, value string) error {
	for _, k := range faultKeys {
		if k.name != key {
			continue
		}
		if strings.TrimSpace(value) == "" {
			return nil
		}
		if err := k.set(f, value); err != nil {
			return fmt.Errorf("%w %s: %w", ErrInvalidFault, key, err)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown key %q (want one of %s)", ErrInvalidFault, key, strings.Join(FaultKeys(), ", "))
}

// Settings returns the faults set in f, each as "key=value" in the order
// of FaultKeys ("delay=50ms", "reset-after=1KiB"); nil when f injects no
// fault. Share is listed only when it is not 1.
func (f *Faults) Settings() []string {
	if !f.Enabled() {
		return nil
	}
	var s []string
	for _, k := range faultKeys {
		if v := k.get(f); v != "" {
			s = append(s, k.name+"="+v)
		}
	}
	return s
}

// Enabled reports whether f, which may be nil, injects any fault.
func (f *Faults) Enabled() bool { return f.streamEnabled() || f.packetEnabled() }

// streamEnabled reports whether f injects a fault on stream connections.
func (f *Faults) streamEnabled() bool {
	return f != nil && (f.Delay > 0 || f.Jitter > 0 || f.Rate > 0 || f.Slice > 0 ||
		!f.CloseAfter.IsZero() || !f.ResetAfter.IsZero() || !f.StallAfter.IsZero() ||
		f.Corrupt > 0 || f.Refuse > 0)
}

// packetEnabled reports whether f injects a fault on UDP answers.
func (f *Faults) packetEnabled() bool {
	return f != nil && (f.Delay > 0 || f.Jitter > 0 || f.Corrupt > 0 ||
		f.Drop > 0 || f.Duplicate > 0 || f.Reorder > 0)
}

// Validate reports the first field of f out of its bounds, wrapping
// ErrInvalidFault. A nil f is valid.
func (f *Faults) Validate() error {
	if f == nil {
		return nil
	}
	bad := func(key, why string) error { return fmt.Errorf("%w %s: %s", ErrInvalidFault, key, why) }
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"delay", f.Delay}, {"jitter", f.Jitter}, {"slice-delay", f.SliceDelay}, {"close-after", f.CloseAfter.Time}, {"reset-after", f.ResetAfter.Time}, {"stall-after", f.StallAfter.Time}} {
		if d.d < 0 || d.d > MaxTimeout {
			return bad(d.key, fmt.Sprintf("%s is not between 0 and %s", FormatDuration(d.d), FormatDuration(MaxTimeout)))
		}
	}
	for _, n := range []struct {
		key string
		n   int64
	}{{"rate", int64(f.Rate)}, {"slice", int64(f.Slice)}, {"close-after", f.CloseAfter.Bytes}, {"reset-after", f.ResetAfter.Bytes}, {"stall-after", f.StallAfter.Bytes}} {
		if n.n < 0 || n.n > maxFaultBytes {
			return bad(n.key, fmt.Sprintf("%d is not between 0 and 1TiB", n.n))
		}
	}
	for _, a := range []struct {
		key string
		a   FaultAfter
	}{{"close-after", f.CloseAfter}, {"reset-after", f.ResetAfter}, {"stall-after", f.StallAfter}} {
		if a.a.Bytes > 0 && a.a.Time > 0 {
			return bad(a.key, "set either a byte count or a duration, not both")
		}
	}
	for _, p := range []struct {
		key string
		p   float64
	}{{"corrupt", f.Corrupt}, {"refuse", f.Refuse}, {"drop", f.Drop}, {"duplicate", f.Duplicate}, {"reorder", f.Reorder}, {"share", f.Share}} {
		if !(p.p >= 0 && p.p <= 1) {
			return bad(p.key, fmt.Sprintf("%v is not a probability from 0 to 1", p.p))
		}
	}
	return nil
}

func parseFaultDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 || d > MaxTimeout {
		return 0, fmt.Errorf("%q is not a duration from 0 to %s (50ms, 2s)", v, FormatDuration(MaxTimeout))
	}
	return d, nil
}

// parseFaultCount parses a byte count, or "0" for none.
func parseFaultCount(v string) (int, error) {
	t := strings.TrimSpace(v)
	if isZeroAmount(t) {
		return 0, nil
	}
	n, err := parseBytes(t)
	if err != nil {
		return 0, err
	}
	return int(min(n, math.MaxInt)), nil
}

// parseFaultRate parses a byte rate, "256KiB/s" or "262144" (/s may be
// left out), or "0" for none.
func parseFaultRate(v string) (int, error) {
	t, _ := strings.CutSuffix(strings.TrimSpace(v), "/s")
	n, err := parseFaultCount(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a byte rate (256KiB/s, 1MB/s) or 0", v)
	}
	return n, nil
}

// parseProbability parses a probability from 0 to 1, as a number (0.01)
// or a percentage (1%). A share must be above 0.
func parseProbability(v string, share bool) (float64, error) {
	t := strings.TrimSpace(v)
	scale := 1.0
	if s, ok := strings.CutSuffix(t, "%"); ok {
		t, scale = s, 100
	}
	p, err := strconv.ParseFloat(t, 64)
	p /= scale
	if err != nil || !(p >= 0 && p <= 1) {
		return 0, fmt.Errorf("%q is not a probability from 0 to 1 (0.01 or 1%%)", v)
	}
	if share && p == 0 {
		return 0, fmt.Errorf("%q: a share above 0 is needed (to fault no connection, set no fault)", v)
	}
	return p, nil
}

func showDuration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

func showCount(n int64, unit string) string {
	if n <= 0 {
		return ""
	}
	return formatBytes(n) + unit
}

func showAfter(a FaultAfter) string {
	if a.IsZero() {
		return ""
	}
	return a.String()
}

// showProbability shows p unless it is the default, def (0 for a fault,
// 1 for the share, whose zero also means 1).
func showProbability(p, def float64) string {
	if p == def || (def == 1 && p == 0) {
		return ""
	}
	return strconv.FormatFloat(p, 'g', 10, 64) // 1e-09, not 9.999999999999999e-10
}

// A FaultKind names a fault, for the log and for
// echoctl_faults_total{kind}.
type FaultKind uint8

// The faults, in the order of Faults' fields.
const (
	FaultDelay FaultKind = iota
	FaultRate
	FaultSlice
	FaultClose
	FaultReset
	FaultStall
	FaultCorrupt
	FaultRefuse
	FaultDrop
	FaultDuplicate
	FaultReorder
)

var faultKindNames = [...]string{
	FaultDelay:   "delay",
	FaultRate:    "rate",
	FaultSlice:   "slice",
	FaultClose:   "close",
	FaultReset:   "reset",
	FaultStall:   "stall",
	FaultCorrupt: "corrupt",
	FaultRefuse:  "refuse",
	// UDP only.
	FaultDrop:      "drop",
	FaultDuplicate: "duplicate",
	FaultReorder:   "reorder",
}

// String returns the kind's label value: "delay", "rate", "slice",
// "close", "reset", "stall", "corrupt", "refuse", "drop", "duplicate" or
// "reorder".
func (k FaultKind) String() string {
	if int(k) < len(faultKindNames) {
		return faultKindNames[k]
	}
	return "unknown"
}

// FaultKinds returns every FaultKind, in the order of their values.
func FaultKinds() []FaultKind {
	ks := make([]FaultKind, len(faultKindNames))
	for i := range ks {
		ks[i] = FaultKind(i)
	}
	return ks
}

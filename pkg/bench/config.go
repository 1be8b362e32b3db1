package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// A Mode is what each connection of a run does.
type Mode string

// The modes Run knows.
const (
	// ModePingPong writes a message of Size bytes and reads it back, with
	// Pipeline messages outstanding per connection.
	ModePingPong Mode = "pingpong"
	// ModeStream writes Chunk bytes at a time without waiting, while
	// reading the echo back and verifying it.
	ModeStream Mode = "stream"
	// ModeConnRate repeats the seed client's cycle: connect, write each
	// part, half-close, read until end of stream, close.
	ModeConnRate Mode = "connrate"
	// ModeIdle opens Conns connections, checks that each echoes one byte,
	// and holds them until the run ends.
	ModeIdle Mode = "idle"
)

// Modes lists every mode, the default first.
var Modes = []Mode{ModePingPong, ModeStream, ModeConnRate, ModeIdle}

// ParseMode returns the Mode named s, or a *ConfigError.
func ParseMode(s string) (Mode, error) {
	m := Mode(s)
	if !slices.Contains(Modes, m) {
		names := make([]string, len(Modes))
		for i, m := range Modes {
			names[i] = string(m)
		}
		return "", &ConfigError{Field: "mode", Value: strconv.Quote(s), Reason: "must be one of " + strings.Join(names, ", ")}
	}
	return m, nil
}

// A ConfigError says which field of a Config is out of range, and what it
// must be. It unwraps to ErrInvalidConfig. Its names are those of the
// command line, so that echoctl can say which flag is wrong.
type ConfigError struct {
	// Field names the field as echoctl's flag does: "conns", "op-timeout".
	Field string
	// Value is the field's value as the message shows it: 0, -1s, "x"
	// (quoted, for a string). Empty when With says what is wrong.
	Value string
	// With, if not empty, names the field whose value, WithValue, makes
	// Field invalid: rate with mode stream.
	With, WithValue string
	// Reason says what the field must be.
	Reason string
}

// Error implements the error interface.
func (e *ConfigError) Error() string {
	subject := e.Field
	if e.Value != "" {
		subject += " " + e.Value
	}
	if e.With != "" {
		subject += " with " + e.With + " " + e.WithValue
	}
	return fmt.Sprintf("%v: %s: %s", ErrInvalidConfig, subject, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Defaults used when the corresponding Config field is zero.
const (
	// DefaultConns is the number of connections.
	DefaultConns = 1
	// DefaultSize is the pingpong message size: the seed server's read size.
	DefaultSize = 128
	// DefaultPipeline is the number of pingpong messages outstanding on a
	// connection.
	DefaultPipeline = 1
	// DefaultChunk is the size of each write in stream mode.
	DefaultChunk = 64 << 10
	// DefaultDuration is how long a run measures.
	DefaultDuration = 10 * time.Second
	// DefaultOpTimeout bounds each operation: a connect, a message's
	// round trip, a stream write or read, a connrate cycle.
	DefaultOpTimeout = 5 * time.Second
)

// Limits on Config fields.
const (
	// MaxConns bounds Conns.
	MaxConns = 1_000_000
	// MaxSize bounds Size and Chunk: 16 MiB, as echo.MaxBufferSize.
	MaxSize = echo.MaxBufferSize
	// MaxPipeline bounds Pipeline.
	MaxPipeline = 1 << 16
	// MaxBusyPoll bounds BusyPoll, as echo.MaxBusyPoll bounds the
	// server's.
	MaxBusyPoll = echo.MaxBusyPoll
	// MaxRate bounds Rate: a billion a second, a tick of a nanosecond,
	// the schedule's resolution.
	MaxRate = 1e9
)

// SeedParts are the seed client's MESSAGES, which connrate mode sends by
// default, each with its own write.
var SeedParts = []string{"This is the message. ", "It will be sent ", "in parts."}

// Config describes a run. The zero value runs one connection of 128-byte
// pingpong against localhost:10000 for ten seconds, with no warmup.
type Config struct {
	// Addr is the server's address: "host:port" or tcp://host:port for
	// TCP, tls://host:port, unix:///path, or udp://host:port, as
	// echo.ParseAddr reads them. If empty, echo.DefaultAddr
	// (localhost:10000) is used. Every mode runs over TCP, TLS and Unix
	// sockets; over UDP the run sends datagrams instead (see Rate and
	// UDPStats), in pingpong mode only.
	Addr string

	// TLSConfig configures the client side of a tls:// Addr, as
	// echo.Client.TLSConfig does: nil verifies the server with the
	// system's roots. The caller's config is never changed; its
	// ClientSessionCache is not used (see TLSResume).
	TLSConfig *tls.Config

	// TLSResume makes the connections of a tls:// Addr resume TLS sessions
	// from a cache they share (tls.NewLRUClientSessionCache), as a
	// browser does, rather than run a full handshake each: in connrate
	// mode, what a server's session tickets save. The Result counts the
	// handshakes that resumed. Without it every handshake is full.
	TLSResume bool

	// Mode is what each connection does. If empty, ModePingPong.
	Mode Mode

	// Conns is the number of connections (connrate: of workers, each
	// running one cycle at a time). If zero, DefaultConns.
	Conns int

	// Size is the pingpong message size in bytes (over UDP, the datagram
	// size: from UDPHeaderSize to the address family's datagram limit,
	// echo.MaxDatagramSize for IPv4 or a host name,
	// echo.MaxDatagramSizeIPv6 for an IPv6 address). If zero,
	// DefaultSize.
	Size int

	// Pipeline is how many pingpong messages a connection keeps
	// outstanding. If zero, DefaultPipeline: write one, read it back.
	Pipeline int

	// Chunk is the size of each stream-mode write. If zero, DefaultChunk.
	Chunk int

	// Rate, in pingpong mode, is how many messages per second the run
	// sends in all, on a fixed schedule: each connection sends one every
	// Conns/Rate seconds, the connections staggered evenly. A message's
	// latency then counts from when it was due whenever a late echo held
	// it up, so a server that stalls shows the whole stall in the
	// percentiles rather than in one slow message (the "coordinated
	// omission" of closed-loop load); when the connection waited for its
	// own schedule, it counts from the write. On Linux a timerfd wakes
	// each connection when its message is due, within tens of
	// microseconds; elsewhere the Go runtime's timers do, up to about a
	// millisecond late, which shows in the latencies. A failure does not
	// restart the schedule: the message that failed counts as an error
	// (after OpTimeout, for a server that stalls), and those due while it
	// waited go as soon as a connection is open again, their latency
	// counted from when they were due, so that a stall longer than
	// OpTimeout shows in the percentiles too. Zero
	// sends each message as soon as the echo of the one before it (or,
	// with Pipeline, a free slot) is back.
	//
	// Over UDP, Rate is required: the datagrams per second sent in all,
	// open loop (a datagram goes when it is due, whatever has come
	// back), each of the Conns sockets sending one every Conns/Rate
	// seconds.
	//
	// In connrate mode, Rate is cycles per second in all, in the same way:
	// each worker starts one every Conns/Rate seconds (a fixed rate of new
	// connections, as a load balancer or firewall sees them), and a
	// cycle's latency counts from when it was due if the one before it
	// ran late, or failed.
	//
	// Validate refuses a Rate under one per Duration, at which the run
	// would send nothing while it measures.
	Rate float64

	// BusyPoll is how long a connection's read looks for the echo without
	// waiting on the runtime's poller (which must then wake it) before it
	// waits as usual: it takes the load generator's own wake-up out of the
	// latencies, for a whole CPU while the run lasts. Zero, the default,
	// waits at once; at most MaxBusyPoll. A polling read holds its CPU, so
	// that the connections waiting to be woken would wait for one: Conns
	// must then be at most runtime.GOMAXPROCS. Unix only; elsewhere it is
	// ignored.
	BusyPoll time.Duration

	// Parts are what each connrate cycle writes, one write each. If nil,
	// SeedParts; other modes take none.
	Parts []string

	// Duration is how long the run measures, after Warmup. If zero,
	// DefaultDuration.
	Duration time.Duration

	// Warmup is how long the run goes before it starts measuring: the
	// connections open, spread over its first half, and the server warms
	// up. Connects that are refused or time out during the warmup are
	// retried, so that many connections can open against a server with a
	// short listen backlog. In idle mode connections may open during the
	// whole run. Zero means no warmup: every connection opens at once.
	// Until a first connect has succeeded, though, refused and timed-out
	// connects are retried for about a second from the start whatever the
	// warmup, and then the run ends with ErrNoServer.
	Warmup time.Duration

	// OpTimeout bounds each operation: a connect, a pingpong round trip,
	// a stream write or read, a whole connrate cycle. An operation that
	// takes longer counts as a timeout. If zero, DefaultOpTimeout.
	OpTimeout time.Duration

	// ServerPID, if not zero, is the server's process id: the run reports
	// the CPU time the server (and its child processes) used while
	// measuring, and in idle mode its resident memory per connection.
	// Linux only.
	ServerPID int

	// Proxy, if not nil, is the PROXY protocol header each connection
	// writes first, before anything else: one a connection, with the
	// connection's own addresses where it names none.
	Proxy *echo.SendProxy

	// Greeting makes each connection read one line the server writes when
	// it opens (echoctl serve --greeting), after the PROXY header and
	// before the load, within OpTimeout; the Result counts connections by
	// greeting. A connection whose greeting fails counts as an error.
	Greeting bool

	// Progress, if not nil, is called about once a second while the run
	// goes, from a goroutine of its own; it must return quickly.
	Progress func(Progress)

	// EachSecond, if not nil, is called as each second of the measured
	// window ends (the last may be shorter), from one goroutine at a
	// time; it must return quickly. Result.Seconds lists them all.
	EachSecond func(Second)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = echo.DefaultAddr
	}
	if c.Mode == "" {
		c.Mode = ModePingPong
	}
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Pipeline == 0 {
		c.Pipeline = DefaultPipeline
	}
	if c.Chunk == 0 {
		c.Chunk = DefaultChunk
	}
	if c.Parts == nil && c.Mode == ModeConnRate {
		c.Parts = SeedParts
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	return c
}

// Validate reports whether c can be run as it is, without taking zero
// fields as their defaults, as Run does before it calls Validate: a zero
// Conns, Size, Pipeline, Chunk, Duration or OpTimeout, or an empty Mode,
// is refused here (nil Parts are still SeedParts in connrate mode). A
// field out of range, or given to a mode that takes none (Parts outside
// connrate mode), is reported as a *ConfigError; the other errors (the
// address, busy polling on more connections than CPUs, the open-file
// limit, a server pid that does not exist) wrap ErrInvalidConfig too.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return err
	}
	a, addrErr := echo.ParseAddr(c.Addr)
	if addrErr == nil {
		if err := c.validateTransport(a); err != nil {
			return err
		}
	}
	ints := []struct {
		field  string
		v, max int
	}{
		{"conns", c.Conns, MaxConns},
		{"size", c.Size, MaxSize},
		{"pipeline", c.Pipeline, MaxPipeline},
		{"chunk", c.Chunk, MaxSize},
	}
	for _, f := range ints {
		if f.v < 1 || f.v > f.max {
			return &ConfigError{Field: f.field, Value: strconv.Itoa(f.v), Reason: fmt.Sprintf("must be an integer from 1 to %d", f.max)}
		}
	}
	durations := []struct {
		field string
		v     time.Duration
		zero  string // what 0 means, if it is allowed
	}{
		{"duration", c.Duration, ""},
		{"warmup", c.Warmup, "no warmup"},
		{"op-timeout", c.OpTimeout, ""},
	}
	for _, f := range durations {
		switch {
		case f.zero != "" && f.v < 0:
			return &ConfigError{Field: f.field, Value: f.v.String(), Reason: "must be a duration of 0 or more, such as 500ms, 10s or 1m (0 for " + f.zero + ")"}
		case f.zero == "" && f.v <= 0:
			return &ConfigError{Field: f.field, Value: f.v.String(), Reason: "must be a positive duration, such as 500ms, 10s or 1m"}
		case f.v > echo.MaxTimeout: // as every other duration: deadlines past it overflow
			return &ConfigError{Field: f.field, Value: echo.FormatDuration(f.v), Reason: "must be at most " + echo.FormatDuration(echo.MaxTimeout)}
		}
	}
	switch {
	case c.ServerPID < 0:
		return &ConfigError{Field: "server-pid", Value: strconv.Itoa(c.ServerPID), Reason: "must be a process id"}
	case c.Rate < 0 || c.Rate > MaxRate || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return &ConfigError{Field: "rate", Value: fmt.Sprint(c.Rate), Reason: fmt.Sprintf("must be messages per second, at most %g, or 0 for as fast as the echoes come back", float64(MaxRate))}
	case c.Rate > 0 && c.Mode != ModePingPong && c.Mode != ModeConnRate:
		return &ConfigError{Field: "rate", With: "mode", WithValue: string(c.Mode), Reason: "only pingpong and connrate run on a schedule"}
	case c.BusyPoll < 0 || c.BusyPoll > MaxBusyPoll:
		return &ConfigError{Field: "busy-poll", Value: c.BusyPoll.String(), Reason: fmt.Sprintf("must be from 0 to %v", MaxBusyPoll)}
	}
	if err := c.validateRateDuration(a, addrErr == nil); err != nil {
		return err
	}
	if c.Proxy != nil {
		err := c.Proxy.Validate()
		if err == nil && addrErr == nil {
			err = c.Proxy.CheckAddr(a)
		}
		if err != nil {
			var pe *echo.SendProxyError
			if errors.As(err, &pe) {
				return &ConfigError{Field: "proxy-" + pe.Field, Value: strconv.Quote(pe.Value), Reason: pe.Reason}
			}
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	switch {
	case addrErr != nil:
		return fmt.Errorf("%w: %w", ErrInvalidConfig, addrErr)
	case a.Network != echo.NetworkUnix && a.Port == 0:
		return bad("address %q: port 0 cannot be connected to", c.Addr)
	case c.BusyPoll > 0 && c.Conns > runtime.GOMAXPROCS(0):
		return bad("busy poll with %d connections: each polling read holds a CPU, and GOMAXPROCS is %d: use at most that many connections", c.Conns, runtime.GOMAXPROCS(0))
	}
	// nil Parts are SeedParts, here too: only an empty list is not.
	switch total := c.partsLen(); {
	case c.Parts != nil && c.Mode != ModeConnRate:
		return &ConfigError{Field: "part", With: "mode", WithValue: string(c.Mode), Reason: "only connrate writes parts (pingpong writes --size bytes, stream --chunk bytes)"}
	case c.Parts != nil && (total == 0 || total > MaxSize):
		return &ConfigError{Field: "part", Reason: fmt.Sprintf("the parts must hold from 1 to %d bytes in all", MaxSize)}
	}
	if err := checkFileLimit(c.Conns); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.ServerPID != 0 {
		if _, err := ProcessCPU(c.ServerPID); err != nil {
			return &ConfigError{Field: "server-pid", Value: strconv.Itoa(c.ServerPID), Reason: "no process to measure whose CPU this user may read: " + err.Error()}
		}
	}
	return nil
}

// validateTransport checks what depends on the address's network: a
// udp:// address runs datagrams, paced, in pingpong mode, with no PROXY
// header or greeting, of a size the address family carries; only a
// tls:// address has sessions to resume.
func (c Config) validateTransport(a echo.Addr) error {
	if c.TLSResume && a.Network != echo.NetworkTLS {
		return &ConfigError{Field: "tls-resume", With: "addr", WithValue: c.Addr, Reason: "only a tls:// address has TLS sessions to resume"}
	}
	if a.Network != echo.NetworkUDP {
		return nil
	}
	udp := func(field, value, reason string) error {
		return &ConfigError{Field: field, Value: value, With: "addr", WithValue: c.Addr, Reason: reason}
	}
	limit := datagramLimit(a)
	switch {
	case c.Mode != ModePingPong:
		return udp("mode", strconv.Quote(string(c.Mode)), "a udp:// address runs datagrams, in pingpong mode only")
	case c.Rate <= 0:
		return udp("rate", fmt.Sprint(c.Rate), "a udp:// address needs a rate: the datagrams per second to send in all, whatever comes back")
	case c.Size < UDPHeaderSize || c.Size > limit:
		return udp("size", strconv.Itoa(c.Size), fmt.Sprintf("a datagram must hold from %d bytes (its sequence number, send time and check) to %d (the %s limit)", UDPHeaderSize, limit, familyName(limit)))
	case c.Pipeline != 1:
		return udp("pipeline", strconv.Itoa(c.Pipeline), "datagrams are sent open loop, on the --rate schedule: there is no pipeline")
	case c.Greeting:
		return udp("greeting", "", "a greeting needs a stream address (tcp, tls or unix)")
	}
	return nil
}

// validateRateDuration refuses a Rate too small for the run to send
// anything while it measures: Rate is for the run in all, so under one
// message (cycle, datagram) in Duration, the run could only end with "no
// echo completed". A rate at which some of several connections send
// nothing in Duration is allowed: the others measure. a is c.Addr, if
// parsed.
func (c Config) validateRateDuration(a echo.Addr, parsed bool) error {
	// A hair under one, so that a rate the user worked out exactly is not
	// refused for a rounding error.
	if c.Rate <= 0 || c.Rate*c.Duration.Seconds() >= 1-1e-9 {
		return nil
	}
	what := "message"
	switch {
	case parsed && a.Network == echo.NetworkUDP:
		what = "datagram"
	case c.Mode == ModeConnRate:
		what = "cycle"
	}
	// The least rate that does, rounded up to what it shows.
	least := strconv.FormatFloat(math.Ceil(1/c.Duration.Seconds()*1000)/1000, 'f', -1, 64)
	return &ConfigError{Field: "rate", Value: fmt.Sprint(c.Rate), With: "duration", WithValue: c.Duration.String(),
		Reason: "sends no " + what + " in the measured duration: use a --rate of at least " + least + ", or a longer --duration"}
}

// network is the network of c.Addr: echo.NetworkTCP, NetworkTLS,
// NetworkUnix or NetworkUDP ("" if it does not parse).
func (c Config) network() string {
	a, err := echo.ParseAddr(c.Addr)
	if err != nil {
		return ""
	}
	return a.Network
}

// datagramLimit is the largest UDP payload to a's host: IPv6's for an
// IPv6 address, else IPv4's (a host name may resolve to IPv4).
func datagramLimit(a echo.Addr) int {
	if ip, err := netip.ParseAddr(a.Host); err == nil && ip.Is6() && !ip.Is4In6() {
		return echo.MaxDatagramSizeIPv6
	}
	return echo.MaxDatagramSize
}

func familyName(limit int) string {
	if limit == echo.MaxDatagramSizeIPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// describe says in a few words what the run does, for the table's heading.
func (c Config) describe() string {
	conns := plural(c.Conns, "connection", "connections")
	if c.network() == echo.NetworkUDP {
		return fmt.Sprintf("%s, %s datagrams", plural(c.Conns, "socket", "sockets"), sizeString(c.Size)) + c.atRate("datagrams")
	}
	switch c.Mode {
	case ModeStream:
		return fmt.Sprintf("%s, %s writes", conns, sizeString(c.Chunk)) + c.polling()
	case ModeConnRate:
		return fmt.Sprintf("%s, each cycle writing %s in %s", plural(c.Conns, "worker", "workers"), sizeString(c.partsLen()), plural(len(c.Parts), "part", "parts")) + c.atRate("cycles") + c.polling()
	case ModeIdle:
		return conns + " held open" + c.polling()
	default:
		return fmt.Sprintf("%s, %s messages, pipeline %d", conns, sizeString(c.Size), c.Pipeline) + c.atRate("messages") + c.polling()
	}
}

// polling says how long reads busy-poll, if they do.
func (c Config) polling() string {
	if c.BusyPoll <= 0 {
		return ""
	}
	return fmt.Sprintf(", reads busy-polling for %v", c.BusyPoll)
}

// atRate says the Rate asked for, if any, in what per second.
func (c Config) atRate(what string) string {
	if c.Rate <= 0 {
		return ""
	}
	return fmt.Sprintf(", at %s %s/s", strconv.FormatFloat(c.Rate, 'f', -1, 64), what)
}

func (c Config) partsLen() int {
	n := 0
	for _, p := range c.Parts {
		n += len(p)
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// sizeString renders a byte count as "128 B", "16 KiB" or "1.5 MiB".
func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

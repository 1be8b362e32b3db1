package ping

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// Defaults of Config.
const (
	DefaultInterval = time.Second
	DefaultSize     = 64
	// DefaultTimeout is ping(8)'s -W default.
	DefaultTimeout = 10 * time.Second
	// MinSize is the smallest probe: a datagram carries its sequence
	// number and the run's identifier, 8 bytes each.
	MinSize = 16
	// MaxSize bounds a probe; over UDP the address family's datagram
	// limit applies too.
	MaxSize = 1 << 20
)

// ErrInvalidConfig is wrapped by every *ConfigError.
var ErrInvalidConfig = errors.New("invalid ping settings")

// Config says what to probe and how.
type Config struct {
	// Client dials the server (its Addr, TLSConfig, Resolver, and Dialer,
	// whose LocalAddr sets the source address). Its Logger is not used.
	Client *echo.Client
	// Count is how many probes to send (with a Deadline, how many
	// replies to wait for); 0 means until the context ends (or Deadline).
	Count int
	// Deadline, if positive, ends the run once it has run this long, as
	// ping -w: the probe then under way counts as Ctrl-C's does
	// ("interrupted"). With a Deadline, Count is how many replies to wait
	// for, probes going on until then, as ping -c with -w; a deadline that
	// comes before them fails the run (Summary.Cut), as ping(8) exits 1.
	Deadline time.Duration
	// Interval is the time from one probe's start to the next's. If zero,
	// DefaultInterval.
	Interval time.Duration
	// Size is how many bytes a probe sends and expects back. If zero,
	// DefaultSize.
	Size int
	// Timeout bounds each probe, connecting included. If zero,
	// DefaultTimeout.
	Timeout time.Duration
	// Reuse sends every probe on one connection (TCP, TLS, Unix), made
	// again after a probe fails. Without it each probe connects anew.
	Reuse bool
	// Source, if valid, is the local address probes are sent from (as
	// ping -I ADDRESS and tcping --source); the port is the kernel's choice.
	Source netip.Addr
	// ResolveEach resolves the server's name before every probe, for a
	// name whose addresses change (DNS balancing); otherwise the first
	// answer is used for the whole run.
	ResolveEach bool
	// OnProbe, if not nil, is called after each probe, in order, on Run's
	// goroutine.
	OnProbe func(Probe)
}

// ConfigError reports a Config field with an invalid value, named as
// echoctl's flag is.
type ConfigError struct {
	Field  string
	Value  string
	Reason string
}

// Error implements the error interface.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s %s: %s", ErrInvalidConfig, e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Client == nil {
		c.Client = &echo.Client{}
	}
	return c
}

// Validate reports the first invalid field of c, as a *ConfigError.
func (c Config) Validate() error {
	switch {
	case c.Count < 0:
		return &ConfigError{"count", fmt.Sprint(c.Count), "must be 0 (until interrupted) or more"}
	case c.Interval < 0:
		return &ConfigError{"interval", c.Interval.String(), "must not be negative"}
	case c.Timeout < 0:
		return &ConfigError{"timeout", c.Timeout.String(), "must not be negative"}
	case c.Deadline < 0:
		return &ConfigError{"deadline", c.Deadline.String(), "must not be negative"}
	case c.Deadline > echo.MaxTimeout:
		return &ConfigError{"deadline", echo.FormatDuration(c.Deadline), "must be at most " + echo.FormatDuration(echo.MaxTimeout)}
	case c.Interval > echo.MaxTimeout: // as every other duration
		return &ConfigError{"interval", echo.FormatDuration(c.Interval), "must be at most " + echo.FormatDuration(echo.MaxTimeout)}
	case c.Timeout > echo.MaxTimeout:
		return &ConfigError{"timeout", echo.FormatDuration(c.Timeout), "must be at most " + echo.FormatDuration(echo.MaxTimeout)}
	case c.Size != 0 && (c.Size < MinSize || c.Size > MaxSize):
		return &ConfigError{"size", fmt.Sprint(c.Size), fmt.Sprintf("must be %d to %d bytes", MinSize, MaxSize)}
	}
	if c.Client != nil {
		a, err := echo.ParseAddr(clientAddr(c.Client))
		if err != nil {
			return err
		}
		if a.Network == echo.NetworkUnix && c.Source.IsValid() {
			return &ConfigError{"source", c.Source.String(), "a unix:// address has no source address"}
		}
		if ip, err := netip.ParseAddr(a.Host); err == nil && c.Source.IsValid() && ip.Unmap().Is4() != c.Source.Unmap().Is4() {
			return &ConfigError{"source", c.Source.String(), "not of the address family of " + a.Host + ": an IPv4 address sends to an IPv4 one, an IPv6 address to an IPv6 one"}
		}
		if a.Network == echo.NetworkUDP && c.Reuse {
			return &ConfigError{"reuse", "true", "a udp:// probe is a datagram on one socket already; --reuse is for tcp, tls and unix"}
		}
		if limit := datagramLimit(a); a.Network == echo.NetworkUDP && c.Size > limit {
			return &ConfigError{"size", fmt.Sprint(c.Size), fmt.Sprintf("a udp:// probe is one datagram: at most %d bytes over this address family", limit)}
		}
	}
	return nil
}

// clientAddr is the address c dials.
func clientAddr(c *echo.Client) string {
	if c.Addr == "" {
		return echo.DefaultAddr
	}
	return c.Addr
}

// datagramLimit is the largest UDP payload over a's address family: 65,507
// bytes over IPv4, 65,527 over IPv6 (without jumbograms). A name may
// resolve to either, so it gets the smaller.
func datagramLimit(a echo.Addr) int {
	if strings.Contains(a.Host, ":") { // an IPv6 literal (ParseAddr drops the brackets)
		return 65527
	}
	return 65507
}

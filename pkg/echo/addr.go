package echo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Networks an Addr can name.
const (
	// NetworkTCP is plain TCP: "host:port" or "tcp://host:port".
	NetworkTCP = "tcp"
	// NetworkUDP is UDP as RFC 862 describes it: "udp://host:port".
	NetworkUDP = "udp"
	// NetworkTLS is TLS over TCP: "tls://host:port".
	NetworkTLS = "tls"
	// NetworkUnix is a Unix domain stream socket: "unix:///absolute/path".
	NetworkUnix = "unix"
)

// maxUnixPath is the longest socket path the kernel accepts: sun_path holds
// 108 bytes on Linux (104 on the BSDs), including the terminating NUL.
const maxUnixPath = 103

// An Addr is a parsed echo address: a network and either a host and port
// or, for NetworkUnix, a socket path. The zero value is not a valid
// address; use ParseAddr.
type Addr struct {
	// Network is NetworkTCP, NetworkUDP, NetworkTLS or NetworkUnix.
	Network string
	// Host is the host name or IP literal (without brackets); empty means
	// every interface when listening and localhost when connecting. Unused
	// for NetworkUnix.
	Host string
	// Port is the port number; 0 asks the kernel to choose one when
	// listening. Unused for NetworkUnix.
	Port uint16
	// Path is the absolute socket path of a NetworkUnix address.
	Path string
}

// ParseAddr parses an echo address: a plain "host:port" (TCP, as before
// URLs were accepted), or one of the URLs "tcp://host:port",
// "udp://host:port", "tls://host:port" and "unix:///absolute/path". The
// host may be a name, an IPv4 literal, a bracketed IPv6 literal or empty.
// The error is an *AddrError naming the part that is wrong.
func ParseAddr(s string) (Addr, error) {
	scheme, rest, hasScheme := strings.Cut(s, "://")
	if !hasScheme {
		// "unix:/path", "tcp:host:port": a scheme without its "//" reads
		// as a host and port, and would be told as a bad port.
		if name, _, ok := strings.Cut(s, ":"); ok && slices.Contains([]string{NetworkTCP, NetworkUDP, NetworkTLS, NetworkUnix}, strings.ToLower(name)) {
			want := "host:port"
			if strings.ToLower(name) == NetworkUnix {
				want = "/absolute/path"
			}
			return Addr{}, &AddrError{Addr: s, Reason: fmt.Sprintf("a scheme needs \"://\": want %s://%s", strings.ToLower(name), want)}
		}
		a, reason := parseHostPort(NetworkTCP, s)
		if reason != "" {
			return Addr{}, &AddrError{Addr: s, Reason: reason}
		}
		return a, nil
	}
	network := strings.ToLower(scheme)
	switch network {
	case NetworkTCP, NetworkUDP, NetworkTLS:
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			return Addr{}, &AddrError{Addr: s, Reason: fmt.Sprintf("unexpected %q after host:port (a %s:// address is only host:port)", rest[i:], network)}
		}
		if i := strings.IndexByte(rest, '@'); i >= 0 {
			return Addr{}, &AddrError{Addr: s, Reason: fmt.Sprintf("unexpected user information %q (a %s:// address is only host:port)", rest[:i+1], network)}
		}
		a, reason := parseHostPort(network, rest)
		if reason != "" {
			return Addr{}, &AddrError{Addr: s, Reason: reason}
		}
		return a, nil
	case NetworkUnix:
		a, reason := parseUnix(rest)
		if reason != "" {
			return Addr{}, &AddrError{Addr: s, Reason: reason}
		}
		return a, nil
	case "":
		return Addr{}, &AddrError{Addr: s, Reason: "missing scheme before \"://\": want tcp, udp, tls or unix"}
	default:
		return Addr{}, &AddrError{Addr: s, Reason: fmt.Sprintf("unknown scheme %q: want tcp, udp, tls or unix", scheme)}
	}
}

// SplitAddr splits a "host:port" address, or a tcp://, udp:// or tls://
// URL, into its host and port, checking the port. An empty host means every
// interface. The error is an *AddrError naming the part that is wrong; a
// unix:// address, which has no host and port, is an error too.
func SplitAddr(addr string) (host string, port uint16, err error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return "", 0, err
	}
	if a.Network == NetworkUnix {
		return "", 0, &AddrError{Addr: addr, Reason: "a unix:// address has no host and port"}
	}
	return a.Host, a.Port, nil
}

// parseHostPort parses "host:port", returning the reason it is invalid, or
// "" if it is not.
func parseHostPort(network, s string) (Addr, string) {
	if s == "" {
		return Addr{}, "missing host:port"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		switch {
		case strings.HasPrefix(s, "[") && !strings.Contains(s, "]"):
			return Addr{}, "missing \"]\" after the IPv6 address"
		case strings.HasSuffix(s, "]") || !strings.Contains(s, ":"):
			return Addr{}, "missing port (want host:port, such as localhost:10000)"
		case strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "["):
			return Addr{}, "too many colons: put an IPv6 address in brackets, such as [::1]:10000"
		}
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return Addr{}, ae.Err
		}
		return Addr{}, err.Error()
	}
	if port == "" {
		return Addr{}, "missing port (want host:port, such as localhost:10000)"
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		if strings.Trim(port, "0123456789") == "" {
			return Addr{}, fmt.Sprintf("port %q out of range: want 0 to 65535", port)
		}
		return Addr{}, fmt.Sprintf("port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " \t\r\n/\\[]@?#") {
		return Addr{}, fmt.Sprintf("host %q holds characters a host name cannot", host)
	}
	if ip, err := netip.ParseAddr(host); strings.HasPrefix(s, "[") && (err != nil || !ip.Is6()) {
		return Addr{}, fmt.Sprintf("%q in brackets: brackets are for an IPv6 address, such as [::1]:10000", host)
	}
	if len(host) > maxHostLen {
		return Addr{}, fmt.Sprintf("host is %d bytes long: a host name is at most %d", len(host), maxHostLen)
	}
	return Addr{Network: network, Host: host, Port: uint16(p)}, ""
}

// parseUnix parses what follows "unix://": an absolute path.
func parseUnix(rest string) (Addr, string) {
	switch {
	case rest == "":
		return Addr{}, "missing socket path: want unix:///absolute/path"
	case !strings.HasPrefix(rest, "/"):
		return Addr{}, fmt.Sprintf("socket path %q is not absolute: want unix:///absolute/path (three slashes)", rest)
	case strings.IndexByte(rest, 0) >= 0:
		return Addr{}, "socket path contains a NUL byte"
	case len(rest) > maxUnixPath:
		return Addr{}, fmt.Sprintf("socket path is %d bytes long: the limit is %d", len(rest), maxUnixPath)
	}
	return Addr{Network: NetworkUnix, Path: samePath(rest)}, ""
}

// samePath writes an absolute path as the kernel reads it, without the
// parts that change nothing: repeated slashes, "." segments and a slash at
// the end, so that two spellings of one socket are one address
// (unix:///tmp//e.sock is unix:///tmp/e.sock). ".." stays: through a
// symbolic link it is not the lexical parent.
func samePath(p string) string {
	var b strings.Builder
	for seg := range strings.SplitSeq(p, "/") {
		if seg != "" && seg != "." {
			b.WriteString("/" + seg)
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// HostPort returns the address as "host:port" (IPv6 literals in brackets);
// it is "" for NetworkUnix.
func (a Addr) HostPort() string {
	if a.Network == NetworkUnix {
		return ""
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
}

// String returns the address in the form ParseAddr reads back to the same
// Addr: "unix:///path" for a Unix socket, "scheme://host:port" otherwise.
func (a Addr) String() string {
	if a.Network == NetworkUnix {
		return "unix://" + a.Path
	}
	return a.Network + "://" + a.HostPort()
}

// AddrError reports an address that ParseAddr cannot accept.
type AddrError struct {
	// Addr is the address as given.
	Addr string
	// Reason names the part that is wrong, such as `port "99999" out of
	// range: want 0 to 65535`.
	Reason string
}

// Error returns `echo: address "ADDR": REASON`, ADDR cut after its first
// 200 bytes.
func (e *AddrError) Error() string {
	if len(e.Addr) > maxShownAddr {
		return fmt.Sprintf("echo: address %q... (%d more bytes): %s", e.Addr[:maxShownAddr], len(e.Addr)-maxShownAddr, e.Reason)
	}
	return fmt.Sprintf("echo: address %q: %s", e.Addr, e.Reason)
}

// maxShownAddr is how much of an address an AddrError shows.
const maxShownAddr = 200

// maxHostLen is the longest host name DNS has (RFC 1035: 253 characters
// written out); an IPv6 literal with a zone is shorter.
const maxHostLen = 253

package echo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// A Resolver looks up the IP addresses of a host name. *net.Resolver
// implements it; tests inject their own to control what a name resolves to.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

func resolverOrDefault(r Resolver) Resolver {
	if r == nil {
		return net.DefaultResolver
	}
	return r
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

// resolve returns the addresses to use for host: the literal itself for an
// IP address, or every distinct address the resolver returns for a name, in
// the resolver's order.
func resolve(ctx context.Context, r Resolver, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	ips, err := resolverOrDefault(r).LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("echo: resolve %q: %w", host, err)
	}
	seen := make(map[netip.Addr]bool, len(ips))
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		ip = ip.Unmap()
		if !seen[ip] {
			seen[ip] = true
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("echo: resolve %q: no addresses", host)
	}
	return out, nil
}

// isTransientAcceptError reports whether an accept error should be retried
// rather than ending Serve: descriptor exhaustion, aborted handshakes and
// memory pressure pass; a closed listener does not.
func isTransientAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.ENOBUFS, syscall.ENOMEM, syscall.EPROTO, syscall.EPERM, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

package echo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
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

// SplitAddr splits a "host:port" address and checks the port. An empty host
// means every interface. It is the check both Server and Client apply to
// their Addr.
func SplitAddr(addr string) (host string, port uint16, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("echo: address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("echo: address %q: port %q is not a number from 0 to 65535", addr, portStr)
	}
	return host, uint16(p), nil
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
	out := ips[:0]
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

// Listen opens the listening sockets for s.Addr without serving them: one
// for an IP literal or an empty host (all interfaces, IPv4 and IPv6), one
// for each address a host name resolves to (IPv6 ones IPv6-only, as asyncio
// does, so that they can share a port with IPv4). With port 0 every
// listener shares the port the kernel chose for the first one.
func (s *Server) Listen(ctx context.Context) ([]net.Listener, error) {
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		ln, err := s.ListenConfig.Listen(ctx, "tcp", net.JoinHostPort("", strconv.Itoa(int(port))))
		if err != nil {
			return nil, fmt.Errorf("echo: listen %s: %w", addr, err)
		}
		return []net.Listener{ln}, nil
	}
	ips, err := resolve(ctx, s.Resolver, host)
	if err != nil {
		return nil, err
	}
	var lns []net.Listener
	for _, ip := range ips {
		network := "tcp"
		if len(ips) > 1 {
			network = "tcp4"
			if ip.Is6() {
				network = "tcp6"
			}
		}
		ap := netip.AddrPortFrom(ip, port)
		ln, err := s.ListenConfig.Listen(ctx, network, ap.String())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("echo: listen %s (%s): %w", addr, ap, err)
		}
		if port == 0 {
			port = uint16(ln.Addr().(*net.TCPAddr).Port)
		}
		lns = append(lns, ln)
	}
	return lns, nil
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

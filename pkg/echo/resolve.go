package echo

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// A Resolver looks up the IP addresses of a host name. *net.Resolver
// implements it; tests inject their own to control what a name resolves to.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// resolve returns the addresses to use for host: the literal itself for an
// IP address, or every distinct address the resolver returns for a name, in
// the resolver's order. A nil r is net.DefaultResolver.
func resolve(ctx context.Context, r Resolver, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", LoopbackName(host))
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

// LoopbackName returns "localhost" for a name RFC 6761 keeps for the
// loopback (localhost., app.localhost), so that it is looked up where
// localhost is, never sent to a DNS server; any other name as it is. Every
// name this package resolves goes through it; a program that resolves
// names of its own alongside (echoctl's metrics address) can too.
func LoopbackName(host string) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return "localhost"
	}
	return host
}

package echo

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestScreenSource is the source check of ServePacket's guard: port 0,
// the server's own sockets (bound to one address, or to every interface
// and matched against loopback and the host's addresses), the reflector
// ports and the ports below 1024.
func TestScreenSource(t *testing.T) {
	own := []net.Addr{
		&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7000}, // bound to one address
		&net.UDPAddr{IP: net.IPv6unspecified, Port: 7001},    // bound to every interface
	}
	tests := []struct {
		src      string
		lowPorts bool
		want     DropReason
		pass     bool
	}{
		{src: "198.51.100.1:40000", pass: true},
		{src: "127.0.0.1:40000", pass: true},
		{src: "198.51.100.1:1024", pass: true},
		{src: "198.51.100.1:0", want: DropPortZero},
		{src: "127.0.0.1:0", lowPorts: true, want: DropPortZero},
		{src: "127.0.0.1:7000", want: DropOwnAddress},
		{src: "127.0.0.9:7000", want: DropOwnAddress}, // any loopback address
		{src: "[::1]:7000", want: DropOwnAddress},
		{src: "127.0.0.1:7001", want: DropOwnAddress},
		{src: "192.0.2.10:7001", want: DropOwnAddress},     // one of the host's addresses
		{src: "[2001:db8::10]:7001", want: DropOwnAddress}, // and over IPv6
		{src: "198.51.100.1:7000", pass: true},             // another host, same port
		{src: "198.51.100.1:7", want: DropReflectorPort},
		{src: "198.51.100.1:19", lowPorts: true, want: DropReflectorPort},
		{src: "198.51.100.1:53", lowPorts: true, want: DropReflectorPort},
		{src: "198.51.100.1:123", want: DropReflectorPort},
		{src: "198.51.100.1:1900", lowPorts: true, want: DropReflectorPort},
		{src: "198.51.100.1:11211", lowPorts: true, want: DropReflectorPort},
		{src: "198.51.100.1:500", want: DropLowPort},
		{src: "198.51.100.1:1023", want: DropLowPort},
		{src: "198.51.100.1:1", want: DropLowPort},
		{src: "198.51.100.1:500", lowPorts: true, pass: true},
		{src: "198.51.100.1:1023", lowPorts: true, pass: true},
	}
	for _, tt := range tests {
		name := tt.src
		if tt.lowPorts {
			name += " low ports allowed"
		}
		t.Run(name, func(t *testing.T) {
			g := &udpGuard{lowPorts: tt.lowPorts, interfaceAddrs: func() ([]net.Addr, error) {
				return []net.Addr{
					&net.IPNet{IP: net.IPv4(192, 0, 2, 10), Mask: net.CIDRMask(24, 32)},
					&net.IPNet{IP: net.ParseIP("2001:db8::10"), Mask: net.CIDRMask(64, 128)},
				}, nil
			}}
			g.setOwn(own)
			src := netip.MustParseAddrPort(tt.src)
			got, pass := g.screenSource(src.Addr(), src.Port())
			if pass != tt.pass || (!pass && got != tt.want) {
				t.Errorf("screenSource(%s) = %v, %v; want %v, %v", tt.src, got, pass, tt.want, tt.pass)
			}
		})
	}
}

// TestLocalIPsCached reads the host's addresses once for many datagrams
// from a port the server listens on, and keeps them if a later read fails.
func TestLocalIPsCached(t *testing.T) {
	reads := 0
	fail := false
	g := &udpGuard{interfaceAddrs: func() ([]net.Addr, error) {
		reads++
		if fail {
			return nil, errors.New("netlink: no")
		}
		return []net.Addr{&net.IPNet{IP: net.IPv4(192, 0, 2, 10), Mask: net.CIDRMask(24, 32)}}, nil
	}}
	g.setOwn([]net.Addr{&net.UDPAddr{IP: net.IPv4zero, Port: 7000}})
	src := netip.MustParseAddr("192.0.2.10")
	for range 100 {
		if r, ok := g.screenSource(src, 7000); ok || r != DropOwnAddress {
			t.Fatalf("screenSource = %v, %v; want own-address", r, ok)
		}
	}
	if reads != 1 {
		t.Errorf("read the host's addresses %d times for 100 datagrams; want once", reads)
	}
	fail = true
	g.local.Load().at = time.Now().Add(-2 * localAddrsTTL)
	if r, ok := g.screenSource(src, 7000); ok || r != DropOwnAddress {
		t.Errorf("after a failed read: screenSource = %v, %v; want own-address from the addresses known", r, ok)
	}
}

// TestScreenOrder: the access list first, then the source, then the rate,
// so that a refused datagram spends no token.
func TestScreenOrder(t *testing.T) {
	s := &Server{
		Deny:             []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")},
		UDPRatePerSource: &PacketRate{Datagrams: 1},
	}
	g := s.packetGuard()
	steps := []struct {
		src  string
		want DropReason
		pass bool
	}{
		{"198.51.100.7:40000", DropDenied, false},
		{"198.51.100.1:7", DropReflectorPort, false},
		{"198.51.100.1:40000", 0, true}, // the one token: not spent above
		{"198.51.100.1:40000", DropRateLimit, false},
	}
	for i, st := range steps {
		got, pass := s.screen(g, netip.MustParseAddrPort(st.src), 10)
		if pass != st.pass || (!pass && got != st.want) {
			t.Errorf("step %d, %s: screen = %v, %v; want %v, %v", i, st.src, got, pass, st.want, st.pass)
		}
	}
}

// TestScreenAllocs: screening a datagram from a known source, rate limit
// included, allocates nothing: a flood costs no memory.
func TestScreenAllocs(t *testing.T) {
	s := &Server{Deny: []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")}}
	g := s.packetGuard()
	g.setOwn([]net.Addr{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7000}})
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	s.screen(g, src, 100) // the source's entry
	if n := testing.AllocsPerRun(1000, func() { s.screen(g, src, 100) }); n != 0 {
		t.Errorf("%v allocations a datagram", n)
	}
}

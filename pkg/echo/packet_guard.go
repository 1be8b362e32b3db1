package echo

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// ServePacket's guard against echo loops and reflection (CERT CA-1996-01,
// the echo/chargen "UDP packet storm"), as FreeBSD inetd's check_loop and
// OpenBSD inetd do: before a datagram is answered it passes, in order, the
// access list, a check of its source (port 0, one of the server's own
// sockets, a well-known service that answers back, a port below 1024) and
// the per-source rate limit. A datagram that fails one is dropped
// unanswered, told to the Observer (PacketDropObserver) and logged at most
// once a second for each reason. docs/udp.md explains each.

// dropLogInterval is the least time between two log lines about datagrams
// dropped for one reason; those in between are counted and the count goes
// with the next line.
const dropLogInterval = time.Second

// localAddrsTTL is how long the host's interface addresses, read to
// recognise a datagram from one of the server's sockets bound to every
// interface, are used before they are read again.
const localAddrsTTL = 5 * time.Second

// reflectorService names the well-known UDP service on port, one that
// answers what it receives, so that an echo to it starts a storm; "" for
// any other port. These ports are refused as source ports whatever
// Server.UDPAllowLowPorts says.
func reflectorService(port uint16) string {
	switch port {
	case 7:
		return "echo"
	case 9:
		return "discard"
	case 13:
		return "daytime"
	case 17:
		return "qotd"
	case 19:
		return "chargen"
	case 37:
		return "time"
	case 53:
		return "dns"
	case 123:
		return "ntp"
	case 161:
		return "snmp"
	case 1900:
		return "ssdp"
	case 11211:
		return "memcached"
	}
	return ""
}

// udpGuard is a Server's state for screening datagrams, set up from the
// Server's fields by Server.packetGuard on first use.
type udpGuard struct {
	once     sync.Once
	lowPorts bool       // Server.UDPAllowLowPorts
	rates    *rateTable // nil: no rate limit

	own   atomic.Pointer[ownSockets] // the server's packet sockets
	local atomic.Pointer[localAddrs] // the host's addresses, read when needed
	// localMu serialises reading the host's addresses.
	localMu sync.Mutex
	// interfaceAddrs is net.InterfaceAddrs; tests replace it.
	interfaceAddrs func() ([]net.Addr, error)

	dropLogs  [len(dropReasonNames)]logLimiter
	writeLogs logLimiter
}

// ownSockets are the local addresses of the sockets ServePacket serves.
type ownSockets struct {
	ports []uint16     // every port listened on
	ips   []netip.Addr // the addresses bound, except unspecified ones
}

// localAddrs are the host's interface addresses at a time.
type localAddrs struct {
	at  time.Time
	ips []netip.Addr
}

// packetGuard returns the server's guard, set up from its fields on first use.
func (s *Server) packetGuard() *udpGuard {
	g := &s.udp
	g.once.Do(func() {
		g.lowPorts = s.UDPAllowLowPorts
		r := PacketRate{Datagrams: DefaultUDPDatagramsPerSource, Bytes: DefaultUDPBytesPerSource}
		if s.UDPRatePerSource != nil {
			r = *s.UDPRatePerSource
		}
		g.rates = newRateTable(r, maxRateSources)
		if g.interfaceAddrs == nil {
			g.interfaceAddrs = net.InterfaceAddrs
		}
	})
	return g
}

// validatePacket checks the fields that only ServePacket uses.
func (s *Server) validatePacket() error {
	if s.UDPRatePerSource != nil {
		return s.UDPRatePerSource.validate()
	}
	return nil
}

// rate returns the per-source rate in force, for the log.
func (g *udpGuard) rate() PacketRate {
	if g.rates == nil {
		return PacketRate{}
	}
	return g.rates.rate
}

// setOwn records the local addresses of the sockets now served.
func (g *udpGuard) setOwn(addrs []net.Addr) {
	o := &ownSockets{}
	for _, a := range addrs {
		ap, ok := addrPort(a)
		if !ok {
			continue
		}
		if !slices.Contains(o.ports, ap.Port()) {
			o.ports = append(o.ports, ap.Port())
		}
		if ip := ap.Addr().Unmap().WithZone(""); !ip.IsUnspecified() && !slices.Contains(o.ips, ip) {
			o.ips = append(o.ips, ip)
		}
	}
	g.own.Store(o)
}

// addrPort returns the IP address and port of a, false if it has none.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return ap, ap.Addr().IsValid()
	}
	if a == nil {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

// screen runs a datagram of n bytes from src (unmapped, without zone)
// through the stages in order and reports the first that refuses it.
func (s *Server) screen(g *udpGuard, src netip.AddrPort, n int) (DropReason, bool) {
	ip := src.Addr()
	if (len(s.Allow) > 0 || len(s.Deny) > 0) && !s.permits(ip) {
		return DropDenied, false
	}
	if r, ok := g.screenSource(ip, src.Port()); !ok {
		return r, false
	}
	if g.rates != nil {
		return g.rates.allow(ip, n, time.Now())
	}
	return 0, true
}

// screenSource refuses a source that cannot or must not be answered: port
// 0, one of the server's own sockets, a well-known service that answers
// back and, unless lowPorts, any port below 1024.
func (g *udpGuard) screenSource(ip netip.Addr, port uint16) (DropReason, bool) {
	switch {
	case port == 0:
		return DropPortZero, false
	case g.isOwn(ip, port):
		return DropOwnAddress, false
	case reflectorService(port) != "":
		return DropReflectorPort, false
	case port < 1024 && !g.lowPorts:
		return DropLowPort, false
	}
	return 0, true
}

// isOwn reports whether ip:port may be one of the server's own sockets:
// the port is one it listens on, and the address is loopback, one it is
// bound to, or one of the host's (for a socket bound to every interface).
func (g *udpGuard) isOwn(ip netip.Addr, port uint16) bool {
	o := g.own.Load()
	if o == nil || !slices.Contains(o.ports, port) {
		return false
	}
	return ip.IsLoopback() || ip.IsUnspecified() || slices.Contains(o.ips, ip) || slices.Contains(g.localIPs(), ip)
}

// localIPs returns the host's interface addresses, read again once they
// are older than localAddrsTTL. They are needed only for a datagram from a
// port the server listens on, so a flood of others never reads them.
func (g *udpGuard) localIPs() []netip.Addr {
	if l := g.local.Load(); l != nil && time.Since(l.at) < localAddrsTTL {
		return l.ips
	}
	g.localMu.Lock()
	defer g.localMu.Unlock()
	if l := g.local.Load(); l != nil && time.Since(l.at) < localAddrsTTL {
		return l.ips
	}
	l := &localAddrs{at: time.Now()}
	addrs, err := g.interfaceAddrs()
	if err != nil { // keep the last ones known
		if old := g.local.Load(); old != nil {
			l.ips = old.ips
		}
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			l.ips = append(l.ips, p.Addr().Unmap().WithZone(""))
		} else if ip, err := netip.ParseAddr(a.String()); err == nil {
			l.ips = append(l.ips, ip.Unmap().WithZone(""))
		}
	}
	g.local.Store(l)
	return l.ips
}

// dropped reports a datagram of n bytes from p that ServePacket dropped
// for reason r: to obs, at debug level on the peer's logger when data is
// logged, and in a line on "main" at most once a second for each reason,
// which counts those dropped since the last one.
func (s *Server) dropped(g *udpGuard, obs PacketDropObserver, listener string, p packetPeer, src netip.AddrPort, n int, r DropReason) {
	if obs != nil {
		obs.Dropped(r)
	}
	if e := s.Logger.Debug(); e != nil {
		name, peer := p.names()
		e.Str("logger", name).Str("peer", peer).Int("bytes", n).Str("reason", r.String()).Msg("dropped: " + g.why(r, src))
	}
	level := zerolog.WarnLevel
	if r == DropDenied { // the operator's own policy, as for TCP
		level = zerolog.InfoLevel
	}
	e := s.Logger.WithLevel(level)
	if e == nil {
		return
	}
	ok, suppressed := g.dropLogs[r].allow(time.Now(), dropLogInterval, func(n int) {
		s.Logger.WithLevel(level).Str("logger", "main").Str("reason", r.String()).Int("dropped_unlogged", n).
			Msgf("%d more UDP datagrams dropped unanswered (%s) since the last report", n, r)
	})
	if !ok {
		e.Discard()
		return
	}
	_, peer := p.names()
	msg := "UDP datagram from " + peer + " dropped unanswered: " + g.why(r, src)
	if suppressed > 0 {
		msg += fmt.Sprintf(" (%d more dropped for this reason since the last report)", suppressed)
	}
	e.Str("logger", "main").Str("listener", listener).Str("peer", peer).Str("reason", r.String()).
		Int("dropped_unlogged", suppressed).Msg(msg)
}

// why explains a drop for the log.
func (g *udpGuard) why(r DropReason, src netip.AddrPort) string {
	port := strconv.Itoa(int(src.Port()))
	switch r {
	case DropDenied:
		return "the access list refuses this peer"
	case DropPortZero:
		return "source port 0 cannot be answered"
	case DropOwnAddress:
		return "it comes from port " + port + ", one of this server's own UDP sockets: answering would loop"
	case DropReflectorPort:
		return "source port " + port + " (" + reflectorService(src.Port()) + ") is a UDP service that answers back: answering could start a packet storm"
	case DropLowPort:
		return "source port " + port + " is below 1024, a system service's (udp-allow-low-ports answers it)"
	case DropRateLimit:
		return "its address is over the per-source rate limit of " + g.rate().String()
	case DropRateTableFull:
		return "the per-source rate limiter already tracks " + strconv.Itoa(maxRateSources) + " active sources"
	case DropFaultQueue:
		return "a delay or reorder fault would hold its answer, but " + strconv.Itoa(MaxHeldAnswers) + " answers are held already"
	}
	return r.String()
}

// writeFailed logs a failed echo at most once a second: a write that
// fails for one datagram, say for a peer the kernel refuses, fails as
// fast as a flood of them arrives.
func (s *Server) writeFailed(g *udpGuard, p packetPeer, err error) {
	e := s.Logger.Warn()
	if e == nil {
		return
	}
	ok, suppressed := g.writeLogs.allow(time.Now(), dropLogInterval, func(n int) {
		s.Logger.Warn().Str("logger", "main").Int("errors_unlogged", n).
			Msgf("%d more UDP write errors since the last report", n)
	})
	if !ok {
		e.Discard()
		return
	}
	name, peer := p.names()
	msg := "write error: " + rootCause(err).Error()
	if suppressed > 0 {
		msg += fmt.Sprintf(" (%d more write errors since the last report)", suppressed)
	}
	e.Str("logger", name).Str("peer", peer).Err(err).Int("errors_unlogged", suppressed).Msg(msg)
}

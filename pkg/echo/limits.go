package echo

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// limitWarnInterval is the least time between two warnings that a
// connection limit refused connections; those in between are counted and
// the count goes with the next warning.
const limitWarnInterval = time.Second

// ParsePrefix parses one entry of an access list (Server.Allow and
// Server.Deny): a CIDR prefix such as "10.0.0.0/8" or "2001:db8::/32", or
// a bare IP address, which stands for that address alone (/32 or /128).
// Host bits are cleared ("10.1.2.3/8" is 10.0.0.0/8), and an IPv4-mapped
// IPv6 entry ("::ffff:10.0.0.0/104") becomes the IPv4 prefix it maps, as
// peers are compared in their unmapped form.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("echo: access list entry %q: want an IP address or a CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32", s)
		}
	} else {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("echo: access list entry %q: want an IP address or a CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32", s)
		}
		p = netip.PrefixFrom(ip, ip.BitLen())
	}
	if ip := p.Addr(); ip.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(ip.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// peerIP returns the IP address of a peer, unmapped and without zone, and
// false for peers that have none (Unix sockets).
func peerIP(addr net.Addr) (netip.Addr, bool) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	case nil:
		return netip.Addr{}, false
	default:
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return netip.Addr{}, false
		}
	}
	return addrPortIP(ap)
}

// addrPortIP is peerIP for an address and port.
func addrPortIP(ap netip.AddrPort) (netip.Addr, bool) {
	ip := ap.Addr()
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// PeerAllowed reports whether the access list allow and deny admits a
// peer, by the rule Server.Allow and Server.Deny apply to every connection
// and datagram: a peer in deny is refused; otherwise, if allow is not
// empty, only peers in allow are admitted. The peer's IP address is
// compared unmapped and without zone; a peer that has none (a Unix socket,
// or nil) is admitted. It lets another listener of the same program, such
// as a metrics endpoint, apply the server's access list.
func PeerAllowed(allow, deny []netip.Prefix, peer net.Addr) bool {
	if len(allow) == 0 && len(deny) == 0 {
		return true
	}
	ip, ok := peerIP(peer)
	if !ok {
		return true
	}
	return permits(allow, deny, ip)
}

// permits applies s.Allow and s.Deny to ip.
func (s *Server) permits(ip netip.Addr) bool { return permits(s.Allow, s.Deny, ip) }

// permits applies an access list to ip, as ncat's --allow and --deny do:
// an address in deny is refused; otherwise, if allow is not empty, only
// addresses in allow are accepted.
func permits(allow, deny []netip.Prefix, ip netip.Addr) bool {
	for _, p := range deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(allow) == 0 {
		return true
	}
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// resilience is the Server's state for its limits and its accept loop's
// back-off; its zero value is ready.
type resilience struct {
	mu    sync.Mutex
	open  int                // connections counted against MaxConns
	perIP map[netip.Addr]int // connections counted against MaxConnsPerIP

	limitWarn  logLimiter
	deniedInfo logLimiter
	acceptWarn logLimiter
	acceptInfo logLimiter
	// lconfs are the listeners served, whose rate-limited warnings
	// (listenerConf.proxyWarns, tlsWarns) flushHeldLogs reports.
	lconfs []*listenerConf

	doneOnce sync.Once
	done     chan struct{} // closed when the server shuts down
}

// doneChan returns a channel closed when the server shuts down.
func (r *resilience) doneChan() chan struct{} {
	r.doneOnce.Do(func() { r.done = make(chan struct{}) })
	return r.done
}

// closeDone wakes accept loops that are pausing after an error.
func (r *resilience) closeDone() {
	ch := r.doneChan()
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// connGuard is what a conn carries for the limits, the timeouts and the
// observer.
type connGuard struct {
	lconf   *listenerConf // the listener that accepted it
	obs     ConnObserver  // nil when the server has no Observer
	ip      netip.Addr    // the peer's IP, if it has one
	hasIP   bool
	counted bool // counted against the connection limits
}

// admit applies the access list and the connection limits to a connection
// from peer just accepted; when it refuses one it logs and reports why (its
// engine closes it).
//
// On a PROXY listener (ListenerOptions.ProxyProtocol) it refuses a peer
// outside ProxyTrusted and applies MaxConns alone: the access list and
// MaxConnsPerIP apply to the client its header names, once it has come
// (readmit).
func (s *Server) admit(c *conn, peer peerAddr) bool {
	c.ip, c.hasIP = peer.ip()
	if c.lconf.opts.ProxyProtocol {
		if !c.lconf.proxyTrusts(c.ip, c.hasIP) {
			c.proxyRefused(&proxyError{result: ProxyUntrusted, err: errProxyUntrusted})
			c.refuse(CloseProxy)
			return false
		}
		c.hasIP = false // c.ip stays the socket's peer, for readmit
	}
	if c.hasIP && (len(s.Allow) > 0 || len(s.Deny) > 0) && !s.permits(c.ip) {
		c.logDenied()
		c.refuse(CloseDenied)
		return false
	}
	if s.MaxConns <= 0 && (s.MaxConnsPerIP <= 0 || !c.hasIP) {
		return true
	}
	r := &s.res
	r.mu.Lock()
	var over string
	switch {
	case s.MaxConns > 0 && r.open >= s.MaxConns:
		over = fmt.Sprintf("connection limit reached: %d open (max-conns %d); refusing new connections", r.open, s.MaxConns)
	case s.MaxConnsPerIP > 0 && c.hasIP && r.perIP[c.ip] >= s.MaxConnsPerIP:
		over = perIPOver(r.perIP[c.ip], c.ip, s.MaxConnsPerIP)
	default:
		r.open++
		if s.MaxConnsPerIP > 0 && c.hasIP {
			if r.perIP == nil {
				r.perIP = make(map[netip.Addr]int)
			}
			r.perIP[c.ip]++
		}
		c.counted = true
	}
	r.mu.Unlock()
	if !c.counted {
		s.warnLimit(c, over)
		c.refuse(CloseLimit)
		return false
	}
	return true
}

// warnLimit logs over, why a limit refuses c, at warn at most once
// limitWarnInterval, with the count of those refused since.
func (s *Server) warnLimit(c *conn, over string) {
	if ok, suppressed := s.res.limitWarn.allow(time.Now(), limitWarnInterval, s.reportLimits); ok {
		if suppressed > 0 {
			over += fmt.Sprintf(" (%d more refused since the last report)", suppressed)
		}
		e := s.Logger.Warn().Str("logger", "main").Str("peer", c.peer)
		if c.proxy != nil && c.proxy.via != "" { // the client a PROXY header named
			e = e.Str("via", c.proxy.via)
		}
		e.Int("refused_unlogged", suppressed).Msg(over)
	}
}

// reportLimits logs that n connections the limits refused went unlogged.
func (s *Server) reportLimits(n int) {
	s.Logger.Warn().Str("logger", "main").Int("refused_unlogged", n).
		Msgf("%d more connections refused by the connection limits since the last report", n)
}

// readmit applies the access list and the per-IP limit to a connection
// of a PROXY listener once its header is read: to the client it names,
// ip (hasIP false: none, as from a Unix socket), whose per-IP count it
// then holds in place of the balancer's. A refusal is logged as admit
// logs it, and returned for the engine to close the connection with.
func (s *Server) readmit(c *conn, ip netip.Addr, hasIP bool) error {
	if !hasIP {
		return nil
	}
	if (len(s.Allow) > 0 || len(s.Deny) > 0) && !s.permits(ip) {
		c.logDenied()
		return refusedError{CloseDenied}
	}
	if s.MaxConnsPerIP <= 0 {
		c.ip = ip
		return nil
	}
	r := &s.res
	r.mu.Lock()
	n := r.perIP[ip]
	if n < s.MaxConnsPerIP {
		if !c.counted {
			r.open++
			c.counted = true
		}
		if r.perIP == nil {
			r.perIP = make(map[netip.Addr]int)
		}
		r.perIP[ip]++
		c.ip, c.hasIP = ip, true
	}
	r.mu.Unlock()
	if n >= s.MaxConnsPerIP {
		s.warnLimit(c, perIPOver(n, ip, s.MaxConnsPerIP))
		return refusedError{CloseLimit}
	}
	return nil
}

// logDenied logs that the access list refuses c, at most once every
// limitWarnInterval, with the count of those refused since: a denied peer
// that reconnects in a loop must not fill the log (22,000 lines in 2 s).
func (c *conn) logDenied() {
	e := c.log(zerolog.InfoLevel)
	if e == nil {
		return
	}
	s := c.srv
	ok, suppressed := s.res.deniedInfo.allow(time.Now(), limitWarnInterval, s.reportDenied)
	if !ok {
		e.Discard()
		return
	}
	msg := "connection refused: address not allowed"
	if suppressed > 0 {
		msg += fmt.Sprintf(" (%d more refused since the last report)", suppressed)
	}
	e.Str("reason", CloseDenied.String()).Int("refused_unlogged", suppressed).Msg(msg)
}

// reportDenied logs that n connections the access list refused went
// unlogged.
func (s *Server) reportDenied(n int) {
	s.Logger.Info().Str("logger", "main").Str("reason", CloseDenied.String()).Int("refused_unlogged", n).
		Msgf("%d more connections refused by the access list since the last report", n)
}

// perIPOver says that the per-IP limit refuses ip, which has n open.
func perIPOver(n int, ip netip.Addr, limit int) string {
	return fmt.Sprintf("per-IP connection limit reached: %d open from %s (max-conns-per-ip %d); refusing its new connections", n, ip, limit)
}

// refusedError closes a connection that readmit refuses.
type refusedError struct{ reason CloseReason }

func (e refusedError) Error() string            { return "connection refused: " + e.reason.String() }
func (e refusedError) closeReason() CloseReason { return e.reason }

// release gives back what admit counted for c.
func (s *Server) release(c *conn) {
	if !c.counted {
		return
	}
	r := &s.res
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open--
	if s.MaxConnsPerIP > 0 && c.hasIP {
		if r.perIP[c.ip]--; r.perIP[c.ip] <= 0 {
			delete(r.perIP, c.ip)
		}
	}
	c.counted = false
}

// refuse reports a connection that is not to be served; its engine closes
// it before any byte is read from it, so that it never waits in the listen
// backlog.
func (c *conn) refuse(reason CloseReason) {
	if c.obs != nil {
		c.obs.Closed(reason)
	}
}

// logLimiter lets a log line through at most once an interval and counts
// the ones it holds back in between. The next line let through says how
// many; if none comes by the end of the interval after the one in which
// the next could have been, a line of their own does (report), and so
// does flush, when their owner stops: a flood that ends is never left out
// of the log, and a steady one is a line an interval.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
	report     func(n int) // logs that n lines were held back (from the first one held)
	timer      *time.Timer // calls flush at the end of the interval, once one is held
}

// allow reports whether to log now and, if so, how many lines were held
// back since the last one logged. report logs a count of held-back lines
// alone; nil: only the next line let through counts them.
func (l *logLimiter) allow(now time.Time, interval time.Duration, report func(n int)) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < interval {
		l.suppressed++
		if l.timer == nil && report != nil {
			// Reported alone only if no line comes to carry the count in
			// the interval after the next one may be logged: a steady
			// flood is a line an interval, not two.
			l.report = report
			l.timer = time.AfterFunc(2*interval-now.Sub(l.last), l.flush)
		}
		return false, 0
	}
	l.last = now
	l.stopTimer()
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// flush reports the lines held back since the last one let through, if
// any.
func (l *logLimiter) flush() {
	l.mu.Lock()
	n, report := l.suppressed, l.report
	l.suppressed = 0
	l.stopTimer()
	l.mu.Unlock()
	if n > 0 && report != nil {
		report(n)
	}
}

func (l *logLimiter) stopTimer() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer, l.report = nil, nil
	}
}

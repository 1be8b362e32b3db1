package echo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/rs/zerolog"
)

// Bound holds the sockets Bind opened, ready for ServeBound: stream
// listeners (TCP, TLS, Unix) and UDP packet connections. The zero value
// holds nothing. A Bound may also be filled by hand with sockets opened
// elsewhere (net.Listen, a wrapped listener, systemd's), to serve them
// together under one Shutdown; each is then named by its own local
// address, as no address was given for it.
type Bound struct {
	// Listeners are the stream listeners, in the order of the addresses
	// given to Bind. Those of tls:// addresses hand out *tls.Conn.
	Listeners []net.Listener
	// PacketConns are the UDP sockets of udp:// addresses.
	PacketConns []net.PacketConn

	// groups records which sockets each address given to Bind opened, for
	// the start-up log lines, Addrs and each listener's options; nil in a
	// Bound filled by hand, whose listeners ServeBound serves with the
	// Server's ListenerOptions.
	groups []boundGroup
}

// boundGroup is what one address given to Bind opened.
type boundGroup struct {
	addr        Addr
	opts        ListenerOptions // its resolved per-listener options
	listeners   []net.Listener
	packetConns []net.PacketConn
	// sockets are the TCP sockets under listeners, one each, for a TCP or
	// TLS address (watchDeferAccept); nil for the others.
	sockets []*net.TCPListener
}

// Addrs returns the address of every socket in b, in the form --addr
// takes: "127.0.0.1:40000" for TCP, "udp://127.0.0.1:40001",
// "tls://[::1]:40002" and "unix:///run/echo.sock" for the others. With
// port 0 they show the port the kernel chose.
func (b *Bound) Addrs() []string {
	var out []string
	for _, g := range b.addrGroups(ListenerOptions{}) {
		out = append(out, g.socketAddrs()...)
	}
	return out
}

// Close closes every socket in b. Bound sockets that are being served are
// closed by Shutdown and Close instead.
func (b *Bound) Close() error {
	var first error
	for _, ln := range b.Listeners {
		if err := ln.Close(); err != nil && first == nil && !errors.Is(err, net.ErrClosed) {
			first = err
		}
	}
	for _, pc := range b.PacketConns {
		if err := pc.Close(); err != nil && first == nil && !errors.Is(err, net.ErrClosed) {
			first = err
		}
	}
	return first
}

// addrGroups returns b's sockets grouped by address: as Bind opened them,
// with their options, or, in a Bound filled by hand, one group a socket,
// named by its own local address, with defaults.
func (b *Bound) addrGroups(defaults ListenerOptions) []boundGroup {
	if b.groups != nil {
		return b.groups
	}
	var gs []boundGroup
	for _, ln := range b.Listeners {
		gs = append(gs, boundGroup{addr: localAddr(NetworkTCP, ln.Addr()), opts: defaults, listeners: []net.Listener{ln}})
	}
	for _, pc := range b.PacketConns {
		gs = append(gs, boundGroup{addr: localAddr(NetworkUDP, pc.LocalAddr()), opts: defaults, packetConns: []net.PacketConn{pc}})
	}
	return gs
}

// localAddr is the Addr of a socket's local address la: a Unix socket's
// path, else the host in la (logStart reads the port from the socket). A
// TLS listener made elsewhere is indistinguishable from TCP, and named as
// TCP.
func localAddr(network string, la net.Addr) Addr {
	if ua, ok := la.(*net.UnixAddr); ok {
		return Addr{Network: NetworkUnix, Path: ua.Name}
	}
	host, _, err := net.SplitHostPort(la.String())
	if err != nil {
		host = la.String()
	}
	return Addr{Network: network, Host: host}
}

// addSocket records the TCP socket under g's next listener: ln, just
// opened (nil if it is not a *net.TCPListener).
func (g *boundGroup) addSocket(ln net.Listener) {
	tl, _ := ln.(*net.TCPListener)
	g.sockets = append(g.sockets, tl)
}

func (b *Bound) add(g boundGroup) {
	b.groups = append(b.groups, g)
	b.Listeners = append(b.Listeners, g.listeners...)
	b.PacketConns = append(b.PacketConns, g.packetConns...)
}

// socketAddrs returns the address of each socket of g, as Addrs does.
func (g boundGroup) socketAddrs() []string {
	var out []string
	for _, ln := range g.listeners {
		switch g.addr.Network {
		case NetworkTCP:
			out = append(out, ln.Addr().String())
		case NetworkUnix:
			out = append(out, "unix://"+ln.Addr().String())
		default:
			out = append(out, g.addr.Network+"://"+ln.Addr().String())
		}
	}
	for _, pc := range g.packetConns {
		out = append(out, g.addr.Network+"://"+pc.LocalAddr().String())
	}
	return out
}

// logStart logs the seed's start-up line for g: "starting up on localhost
// port 10000" for TCP, with the network appended for the others
// ("starting up on localhost port 10000 (udp)", "starting up on
// /run/echo.sock (unix)"); the listeners field lists every socket. It is
// the only place that writes the line.
func (s *Server) logStart(g boundGroup) {
	e := s.Logger.Info()
	if e == nil {
		return
	}
	addrs := zerolog.Arr()
	for _, a := range g.socketAddrs() {
		addrs.Str(a)
	}
	e = e.Str("logger", "main").Str("network", g.addr.Network).Array("listeners", addrs)
	opts := g.opts
	if g.addr.Network == NetworkUnix { // a TCP option
		opts.DisableDeferAccept = false
	}
	o := opts.String()
	if g.addr.Network == NetworkUDP { // the PROXY keys do not apply
		o = opts.faultString()
	}
	if o != "" {
		e = e.Str("options", o)
	}
	if g.addr.Network == NetworkUnix {
		e.Msgf("starting up on %s (unix)", g.addr.Path)
		return
	}
	host, port := g.addr.Host, strconv.Itoa(int(g.addr.Port))
	if host == "" {
		host = "*"
	}
	var first net.Addr
	switch {
	case len(g.listeners) > 0:
		first = g.listeners[0].Addr()
	case len(g.packetConns) > 0:
		first = g.packetConns[0].LocalAddr()
	}
	if first != nil {
		if _, p, err := net.SplitHostPort(first.String()); err == nil {
			port = p
		}
	}
	if g.addr.Network == NetworkTCP {
		e.Msgf("starting up on %s port %s", host, port)
		return
	}
	e.Msgf("starting up on %s port %s (%s)", host, port, g.addr.Network)
}

// Bind opens the sockets for every address in addrs (s.Addr, else
// DefaultAddr, when none is given) without serving them, so that a caller
// can bind every address first and fail before serving any; ServeBound
// serves them. Each address is parsed by ParseListenAddr: a query after it
// overrides s.ListenerOptions for its listeners. An IP literal or an
// empty host (every interface, IPv4 and IPv6) gets one socket; a host name
// gets one for each address s.Resolver resolves it to (IPv6 ones
// IPv6-only, as asyncio does, so that they can share a port with IPv4),
// for udp:// and tls:// as for TCP. With port 0 every socket of an address
// shares the port the kernel chose for the first. tls:// needs
// s.TLSConfig; unix:// replaces a stale socket file (one nobody listens
// on) but fails if a server is listening there or if the path is not a
// socket. If any address fails, everything opened so far is closed.
//
// Bind checks the Server's settings first, as Serve does, and fails with
// their error before opening anything; from then on SetFaults may change
// the faults the sockets will be served with.
func (s *Server) Bind(ctx context.Context, addrs ...string) (*Bound, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		addrs = []string{s.addr()}
	}
	b := &Bound{}
	for _, raw := range addrs {
		g, err := s.bindAddr(ctx, raw)
		if err != nil {
			b.Close()
			return nil, err
		}
		b.add(g)
	}
	return b, nil
}

// ServeBound serves every socket in b at once, each listener with Serve
// and each packet connection with ServePacket, after logging one start-up
// line an address. It returns when all of them have stopped:
// ErrServerClosed after Shutdown or Close, or the first other error (after
// closing the remaining sockets, so that the server stops as a whole). One
// Shutdown stops them all.
//
// The start-up lines are logged once every socket is served (told to the
// Observer, which makes the server ready) or has already stopped, and
// before any of them accepts: whoever reads them finds the server ready,
// and they come before every connection's lines. A Shutdown that came
// first has logged "closing server": then no start-up line follows it.
func (s *Server) ServeBound(b *Bound) error {
	lns, pcs := b.Listeners, b.PacketConns
	n := len(lns) + len(pcs)
	groups := b.addrGroups(s.ListenerOptions)
	opts := make(map[net.Listener]ListenerOptions, len(lns))
	sockets := make(map[net.Listener]*net.TCPListener, len(lns))
	for _, g := range groups {
		for i, ln := range g.listeners {
			opts[ln] = g.opts
			if i < len(g.sockets) {
				sockets[ln] = g.sockets[i]
			}
		}
	}
	errs := make(chan error, n)
	var serving sync.WaitGroup
	serving.Add(n)
	logged := make(chan struct{})
	started := func() func() {
		var once sync.Once
		return func() {
			once.Do(func() {
				serving.Done()
				<-logged // the start-up line comes before any connection's
			})
		}
	}
	for _, ln := range lns {
		o, ok := opts[ln]
		if !ok {
			o = s.ListenerOptions
		}
		go func() { errs <- s.serve(ln, sockets[ln], o, started()) }()
	}
	popts := make(map[net.PacketConn]ListenerOptions, len(pcs))
	for _, g := range groups {
		for _, pc := range g.packetConns {
			popts[pc] = g.opts
		}
	}
	for _, pc := range pcs {
		o, ok := popts[pc]
		if !ok {
			o = s.ListenerOptions
		}
		go func() { errs <- s.servePacket(pc, o, started()) }()
	}
	serving.Wait()
	s.mu.Lock() // as Shutdown's "closing server": never a start-up line after it
	if !s.shuttingDown() {
		for _, g := range groups {
			s.logStart(g)
		}
	}
	s.mu.Unlock()
	close(logged)
	var first error
	for range n {
		err := <-errs
		if first == nil || errors.Is(first, ErrServerClosed) && !errors.Is(err, ErrServerClosed) {
			first = err
		}
		if !errors.Is(err, ErrServerClosed) {
			b.Close()
		}
	}
	return first
}

func (s *Server) addr() string {
	if s.Addr == "" {
		return DefaultAddr
	}
	return s.Addr
}

// bindAddr opens the sockets of one address.
func (s *Server) bindAddr(ctx context.Context, raw string) (boundGroup, error) {
	a, opts, err := ParseListenAddr(raw, s.ListenerOptions)
	if err != nil {
		return boundGroup{}, err
	}
	g := boundGroup{addr: a, opts: opts}
	// TCP listeners are TCP's, as the seed's are: Go's net makes
	// Multipath TCP ones by default since Go 1.24, whose kernel path
	// every connection then takes, MPTCP or not.
	tcp := s.ListenConfig
	tcp.SetMultipathTCP(false)
	listenTCP := func(network, address string) (net.Listener, error) {
		ln, err := tcp.Listen(ctx, network, address)
		if err == nil {
			g.addSocket(ln)
		}
		return ln, err
	}
	switch a.Network {
	case NetworkTCP:
		g.listeners, err = bindIPs(ctx, s.Resolver, raw, a, "tcp", listenTCP, net.Listener.Addr)
	case NetworkTLS:
		var cfg *tls.Config
		if cfg, err = s.serverTLSConfig(); err != nil {
			return g, fmt.Errorf("echo: listen %s: %w", raw, err)
		}
		g.listeners, err = bindIPs(ctx, s.Resolver, raw, a, "tcp", func(network, address string) (net.Listener, error) {
			ln, err := listenTCP(network, address)
			if err != nil {
				return nil, err
			}
			if opts.ProxyProtocol { // its header comes before the handshake (goConn.proxyFirst)
				ln = headListener{ln}
			}
			return tls.NewListener(ln, cfg), nil
		}, net.Listener.Addr)
	case NetworkUDP:
		g.packetConns, err = bindIPs(ctx, s.Resolver, raw, a, "udp", func(network, address string) (net.PacketConn, error) {
			return s.ListenConfig.ListenPacket(ctx, network, address)
		}, net.PacketConn.LocalAddr)
	case NetworkUnix:
		var ln net.Listener
		if ln, err = s.listenUnix(ctx, raw, a.Path); err == nil {
			g.listeners = []net.Listener{ln}
		}
	}
	return g, err
}

// bindIPs opens one socket for an empty host (every interface, IPv4 and
// IPv6 on one dual-stack socket) or an IP literal (0.0.0.0 IPv4 only, [::]
// dual-stack), and one for each address
// a host name resolves to (IPv6 ones IPv6-only, as asyncio does, so that
// they can share a port with IPv4). With port 0 every socket shares the
// port the kernel chose for the first one. base is "tcp" or "udp".
func bindIPs[T interface{ Close() error }](ctx context.Context, r Resolver, raw string, a Addr, base string,
	open func(network, address string) (T, error), local func(T) net.Addr) ([]T, error) {
	port := a.Port
	if a.Host == "" {
		sock, err := open(base, net.JoinHostPort("", strconv.Itoa(int(port))))
		if err != nil {
			return nil, fmt.Errorf("echo: listen %s: %w", raw, err)
		}
		return []T{sock}, nil
	}
	ips, err := resolve(ctx, r, a.Host)
	if err != nil {
		return nil, err
	}
	var socks []T
	for _, ip := range ips {
		// IPv4 addresses are IPv4-only (Go would make 0.0.0.0 a dual-stack
		// socket); an IPv6 address is IPv6-only beside others, while a
		// lone [::] keeps Go's dual stack.
		network := base
		switch {
		case ip.Is4():
			network = base + "4"
		case len(ips) > 1:
			network = base + "6"
		}
		ap := netip.AddrPortFrom(ip, port)
		sock, err := open(network, ap.String())
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			return nil, fmt.Errorf("echo: listen %s (%s): %w", raw, ap, err)
		}
		if port == 0 {
			if _, p, err := net.SplitHostPort(local(sock).String()); err == nil {
				if n, err := strconv.ParseUint(p, 10, 16); err == nil {
					port = uint16(n)
				}
			}
		}
		socks = append(socks, sock)
	}
	return socks, nil
}

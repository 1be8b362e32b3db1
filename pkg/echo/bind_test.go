package echo_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestServeBoundEveryTransport serves TCP, UDP, TLS and a Unix socket from
// one Server and stops them all with one Shutdown.
func TestServeBoundEveryTransport(t *testing.T) {
	fx := newTLSFixture(t)
	path := socketPath(t)
	var logs syncBuffer
	srv := &echo.Server{Logger: debugLogger(&logs), TLSConfig: &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}}
	addrs, s := serveBound(t, srv, "127.0.0.1:0", "udp://127.0.0.1:0", "tls://127.0.0.1:0", "unix://"+path)
	if len(addrs) != 4 || strings.Contains(addrs[0], "://") || !strings.HasPrefix(addrs[1], "udp://127.0.0.1:") ||
		!strings.HasPrefix(addrs[2], "tls://127.0.0.1:") || addrs[3] != "unix://"+path {
		t.Fatalf("Addrs = %q", addrs)
	}
	for _, addr := range addrs {
		c := &echo.Client{Addr: addr, Timeout: ioTimeout, TLSConfig: &tls.Config{RootCAs: fx.ca.Pool()}}
		var out bytes.Buffer
		if _, err := c.Send(t.Context(), seedMessages, &out); err != nil || out.String() != seedEcho {
			t.Fatalf("%s: Send = %q, %v", addr, out.String(), err)
		}
	}
	var starts []string
	for _, l := range parseLog(t, logs.String()) {
		if l.Logger == "main" && strings.HasPrefix(l.Message, "starting up") {
			starts = append(starts, l.Message)
		}
	}
	port := func(a string) string { return a[strings.LastIndexByte(a, ':')+1:] }
	want := []string{
		"starting up on 127.0.0.1 port " + port(addrs[0]),
		"starting up on 127.0.0.1 port " + port(addrs[1]) + " (udp)",
		"starting up on 127.0.0.1 port " + port(addrs[2]) + " (tls)",
		"starting up on " + path + " (unix)",
	}
	if !slicesEqual(starts, want) {
		t.Errorf("start-up lines %q, want %q", starts, want)
	}

	if err := shutdown(srv, ioTimeout); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
		t.Fatalf("ServeBound = %v, want ErrServerClosed", err)
	}
	for _, a := range addrs[:3] {
		network, hostport := "tcp", a
		if n, rest, ok := strings.Cut(a, "://"); ok {
			network, hostport = map[string]string{"udp": "udp", "tls": "tcp"}[n], rest
		}
		if network == "udp" {
			pc, err := net.ListenPacket("udp", hostport)
			if err != nil {
				t.Errorf("%s still bound after Shutdown: %v", a, err)
				continue
			}
			pc.Close()
			continue
		}
		waitRefused(t, hostport)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file left after Shutdown: %v", err)
	}
}

// TestBindHostNameEveryAddress binds a name that resolves to 127.0.0.1 and
// ::1 on udp:// and tls://: each gets a socket on both, on one port.
func TestBindHostNameEveryAddress(t *testing.T) {
	requireIPv6(t)
	fx := newTLSFixture(t)
	r := &fakeResolver{addrs: map[string][]netip.Addr{"echo.test": {loopback4, loopback6}}}
	for _, scheme := range []string{"udp", "tls"} {
		t.Run(scheme, func(t *testing.T) {
			srv := &echo.Server{Resolver: r, TLSConfig: &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}}
			addrs, _ := serveBound(t, srv, scheme+"://echo.test:0")
			if len(addrs) != 2 || !strings.HasPrefix(addrs[0], scheme+"://127.0.0.1:") || !strings.HasPrefix(addrs[1], scheme+"://[::1]:") {
				t.Fatalf("Addrs = %q, want 127.0.0.1 and [::1]", addrs)
			}
			if p0, p1 := addrs[0][strings.LastIndexByte(addrs[0], ':'):], addrs[1][strings.LastIndexByte(addrs[1], ':'):]; p0 != p1 {
				t.Errorf("ports differ: %q", addrs)
			}
			for _, addr := range addrs {
				c := &echo.Client{Addr: addr, Timeout: ioTimeout, TLSConfig: &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "localhost"}}
				var out bytes.Buffer
				if _, err := c.Send(t.Context(), seedMessages, &out); err != nil || out.String() != seedEcho {
					t.Fatalf("%s: Send = %q, %v", addr, out.String(), err)
				}
			}
		})
	}
}

// TestBindFailureClosesEverything binds a free address, then a busy one:
// Bind fails and the first address is free again.
func TestBindFailureClosesEverything(t *testing.T) {
	busy := listenLocal(t)
	free := listenLocal(t)
	freeAddr := free.Addr().String()
	free.Close()
	_, err := (&echo.Server{}).Bind(t.Context(), freeAddr, "udp://127.0.0.1:0", busy.Addr().String())
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.HasPrefix(err.Error(), "echo: listen "+busy.Addr().String()+" ") {
		t.Fatalf("Bind with a busy address = %v", err)
	}
	ln, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("%s still bound after Bind failed: %v", freeAddr, err)
	}
	ln.Close()
}

func TestBindBadAddress(t *testing.T) {
	_, err := (&echo.Server{}).Bind(t.Context(), "127.0.0.1:0", "sctp://127.0.0.1:7")
	var ae *echo.AddrError
	if !errors.As(err, &ae) || ae.Addr != "sctp://127.0.0.1:7" {
		t.Fatalf("Bind = %v, want an AddrError for the sctp address", err)
	}
}

// TestListenAndServeUDP serves a udp:// Addr through ListenAndServe
// (Bind and ServeBound).
func TestListenAndServeUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "udp://" + pc.LocalAddr().String()
	pc.Close()
	var logs watchedLog
	srv := &echo.Server{Addr: addr, Logger: zerolog.New(&logs)}
	s := &serving{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = srv.ListenAndServe()
	}()
	logs.wait(t, "the starting up line", func(log string) bool { return strings.Contains(log, "starting up on ") })
	c := &echo.Client{Addr: addr, Timeout: ioTimeout}
	var out bytes.Buffer
	if _, err := c.Send(t.Context(), seedMessages, &out); err != nil || out.String() != seedEcho {
		t.Errorf("Send = %q, %v", out.String(), err)
	}
	if err := shutdown(srv, ioTimeout); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
		t.Fatalf("ListenAndServe = %v", err)
	}
}

// TestServeBoundFilledByHand serves a Bound filled with sockets opened
// elsewhere: each is served, logged and listed by its own local address.
func TestServeBoundFilledByHand(t *testing.T) {
	ln := listenLocal(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	path := socketPath(t)
	unix, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close() })
	var logs syncBuffer
	srv := &echo.Server{Logger: zerolog.New(&logs)}
	b := &echo.Bound{Listeners: []net.Listener{ln, unix}, PacketConns: []net.PacketConn{pc}}
	stop := serveGracefully(t, srv, b)

	addrs := b.Addrs()
	if want := []string{ln.Addr().String(), "unix://" + path, "udp://" + pc.LocalAddr().String()}; !slicesEqual(addrs, want) {
		t.Fatalf("Addrs = %q, want %q", addrs, want)
	}
	for _, addr := range addrs {
		checkEcho(t, addr)
	}
	stop()
	var starts []logLine
	for _, l := range parseLog(t, logs.String()) {
		if l.Logger == "main" && strings.HasPrefix(l.Message, "starting up") {
			starts = append(starts, l)
		}
	}
	want := []string{
		fmt.Sprintf("starting up on 127.0.0.1 port %d", portOf(t, ln.Addr())),
		"starting up on " + path + " (unix)",
		fmt.Sprintf("starting up on 127.0.0.1 port %d (udp)", pc.LocalAddr().(*net.UDPAddr).Port),
	}
	if len(starts) != len(want) {
		t.Fatalf("start-up lines %+v, want %q", starts, want)
	}
	for i, l := range starts {
		if l.Message != want[i] || fmt.Sprint(l.Listeners) != fmt.Sprint(addrs[i:i+1]) {
			t.Errorf("start-up line %q listing %q, want %q listing %q", l.Message, l.Listeners, want[i], addrs[i:i+1])
		}
	}
}

// TestServeBoundStopsAllOnError: when one socket fails, ServeBound closes
// the others, stream and packet, and returns that socket's error.
func TestServeBoundStopsAllOnError(t *testing.T) {
	errBroken := errors.New("listener broke")
	good := listenLocal(t)
	bad := listenLocal(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	srv := &echo.Server{}
	t.Cleanup(func() { srv.Close() })
	done := make(chan error, 1)
	go func() {
		done <- srv.ServeBound(&echo.Bound{
			Listeners:   []net.Listener{good, &flakyListener{Listener: bad, errs: []error{errBroken}}},
			PacketConns: []net.PacketConn{pc},
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errBroken) {
			t.Errorf("ServeBound = %v, want the broken listener's error", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("ServeBound kept serving after one listener failed")
	}
	if c, err := net.DialTimeout("tcp", good.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the healthy listener is still open after ServeBound returned")
	}
	again, err := net.ListenPacket("udp", pc.LocalAddr().String())
	if err != nil {
		t.Errorf("the packet socket is still open after ServeBound returned: %v", err)
	} else {
		again.Close()
	}
}

// bindRetry calls srv.Bind(addrs...), retrying when the port the kernel
// chose for a name's first address is taken on another (another test's,
// say). The sockets are closed when the test ends.
func bindRetry(t *testing.T, srv *echo.Server, addrs ...string) *echo.Bound {
	t.Helper()
	for range 5 {
		b, err := srv.Bind(t.Context(), addrs...)
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			t.Fatalf("Bind %q (Addr %q): %v", addrs, srv.Addr, err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	t.Skip("ports keep colliding")
	return nil
}

// serveGracefully runs srv.ServeBound(b) and returns a function that
// shuts srv down and checks that both calls return as they should; it is
// called when the test ends if not before.
func serveGracefully(t *testing.T, srv *echo.Server, b *echo.Bound) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.ServeBound(b) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := shutdown(srv, 5*time.Second); err != nil {
				t.Errorf("Shutdown = %v", err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, echo.ErrServerClosed) {
					t.Errorf("ServeBound = %v, want ErrServerClosed", err)
				}
			case <-time.After(ioTimeout):
				t.Error("ServeBound did not return after Shutdown")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkEcho runs the seed exchange against addr.
func checkEcho(t *testing.T, addr string) {
	t.Helper()
	cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
	var got strings.Builder
	if _, err := cl.Send(t.Context(), seedMessages, &got); err != nil {
		t.Errorf("echo via %s: %v", addr, err)
	} else if got.String() != seedEcho {
		t.Errorf("echo via %s = %q, want %q", addr, got.String(), seedEcho)
	}
}

// TestBindResolvedName binds a host name at every address the injected
// Resolver gives, IPv4-only and IPv6-only, on one port, and serves both.
func TestBindResolvedName(t *testing.T) {
	requireIPv6(t)
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {loopback4, loopback6}}}
	var mu sync.Mutex
	var networks []string
	srv := &echo.Server{
		Addr:     "localhost:0",
		Resolver: res,
		ListenConfig: net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
			mu.Lock()
			defer mu.Unlock()
			networks = append(networks, network)
			return nil
		}},
	}
	b := bindRetry(t, srv)
	lns := b.Listeners
	if len(lns) != 2 {
		t.Fatalf("Bind opened %d listeners, want one per address", len(lns))
	}
	a4, a6 := lns[0].Addr().(*net.TCPAddr), lns[1].Addr().(*net.TCPAddr)
	if !a4.IP.Equal(net.IPv4(127, 0, 0, 1)) || !a6.IP.Equal(net.IPv6loopback) {
		t.Fatalf("listeners on %v and %v, want 127.0.0.1 and ::1", a4, a6)
	}
	if a4.Port == 0 || a4.Port != a6.Port {
		t.Fatalf("listeners on ports %d and %d, want the same non-zero port", a4.Port, a6.Port)
	}
	mu.Lock()
	if want := []string{"tcp4", "tcp6"}; !slices.Equal(networks[len(networks)-2:], want) {
		t.Errorf("listened on networks %q, want %q", networks, want)
	}
	mu.Unlock()
	if got := res.asked(); len(got) == 0 || got[0] != "localhost" {
		t.Errorf("resolver asked for %q, want localhost", got)
	}

	serveGracefully(t, srv, b)
	port := strconv.Itoa(a4.Port)
	checkEcho(t, net.JoinHostPort("127.0.0.1", port))
	checkEcho(t, net.JoinHostPort("::1", port))
}

// TestBindAddrs binds IP literals and the empty host: one socket each,
// never looked up, serving the loopback addresses it covers.
func TestBindAddrs(t *testing.T) {
	tests := []struct {
		addr  string
		ipv6  bool     // needs IPv6
		dials []string // hosts that must connect; loopback only
	}{
		{addr: "127.0.0.1:0", dials: []string{"127.0.0.1"}},
		{addr: "[::1]:0", ipv6: true, dials: []string{"::1"}},
		{addr: ":0", dials: []string{"127.0.0.1", "::1"}},
		{addr: "0.0.0.0:0", dials: []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if tt.ipv6 {
				requireIPv6(t)
			}
			// IP literals and the empty host are never looked up.
			res := &fakeResolver{err: errors.New("resolver must not be used")}
			srv := &echo.Server{Addr: tt.addr, Resolver: res}
			b := bindRetry(t, srv)
			if len(b.Listeners) != 1 || len(b.PacketConns) != 0 {
				t.Fatalf("Bind opened %d listeners and %d packet sockets, want 1 listener", len(b.Listeners), len(b.PacketConns))
			}
			if got := res.asked(); len(got) != 0 {
				t.Errorf("resolver asked for %q", got)
			}
			serveGracefully(t, srv, b)
			port := strconv.Itoa(portOf(t, b.Listeners[0].Addr()))
			for _, host := range tt.dials {
				if host == "::1" && !hasIPv6() {
					continue
				}
				checkEcho(t, net.JoinHostPort(host, port))
			}
		})
	}
}

func hasIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func TestBindDeduplicatesAddresses(t *testing.T) {
	mapped := netip.AddrFrom16(loopback4.As16())
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {mapped, loopback4, loopback4}}}
	srv := &echo.Server{Addr: "localhost:0", Resolver: res}
	b := bindRetry(t, srv)
	if len(b.Listeners) != 1 {
		t.Fatalf("Bind opened %d listeners for one distinct address", len(b.Listeners))
	}
	if a := b.Listeners[0].Addr().(*net.TCPAddr); a.IP.To4() == nil || !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("listening on %v, want 127.0.0.1", a)
	}
	serveGracefully(t, srv, b)
	checkEcho(t, b.Listeners[0].Addr().String())
}

// TestBindLeavesResolverResultAlone: the addresses a Resolver returns
// belong to it (it may cache and share them); Bind must not rewrite them.
func TestBindLeavesResolverResultAlone(t *testing.T) {
	mapped := netip.AddrFrom16(loopback4.As16())
	cached := []netip.Addr{mapped, loopback4}
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": cached}}
	srv := &echo.Server{Addr: "localhost:0", Resolver: res}
	bindRetry(t, srv)
	if want := []netip.Addr{mapped, loopback4}; !slices.Equal(cached, want) {
		t.Errorf("after Bind the resolver's cached result is %v, want %v", cached, want)
	}
}

func TestBindErrors(t *testing.T) {
	errLookup := errors.New("lookup failed")
	busy := listenLocal(t)
	tests := []struct {
		name   string
		srv    *echo.Server
		target error
		text   string
	}{
		{"resolver error", &echo.Server{Addr: "echo.test:0", Resolver: &fakeResolver{err: errLookup}}, errLookup, "lookup failed"},
		{"unknown host", &echo.Server{Addr: "echo.test:0", Resolver: &fakeResolver{}}, nil, "no such host"},
		{"no addresses", &echo.Server{Addr: "echo.test:0", Resolver: &fakeResolver{addrs: map[string][]netip.Addr{"echo.test": nil}}}, nil, "no addresses"},
		{"port in use", &echo.Server{Addr: busy.Addr().String()}, syscall.EADDRINUSE, "address already in use"},
		{"bad port", &echo.Server{Addr: "127.0.0.1:70000"}, nil, "70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.srv.Bind(t.Context())
			if b != nil {
				b.Close()
				t.Errorf("Bind returned sockets %q with its error", b.Addrs())
			}
			if err == nil {
				t.Fatalf("Bind on %q succeeded", tt.srv.Addr)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %v does not wrap %v", err, tt.target)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.HasPrefix(err.Error(), "echo: ") {
				t.Errorf("error text = %q, want echo: ...%s...", err, tt.text)
			}
		})
	}
}

// TestBindClosesEarlierListeners: when a name's second address fails, the
// listener already open on its first is closed.
func TestBindClosesEarlierListeners(t *testing.T) {
	requireIPv6(t)
	busy := listenLocal(t) // 127.0.0.1:port is taken
	port := portOf(t, busy.Addr())
	if !portFreeOnIPv6(port) {
		t.Skipf("something listens on [::1]:%d", port)
	}
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {loopback6, loopback4}}}
	srv := &echo.Server{Resolver: res}
	b, err := srv.Bind(t.Context(), fmt.Sprintf("localhost:%d", port))
	if !errors.Is(err, syscall.EADDRINUSE) {
		if b != nil {
			b.Close()
		}
		t.Fatalf("Bind = %v, want EADDRINUSE for 127.0.0.1", err)
	}
	if !portFreeOnIPv6(port) {
		t.Errorf("[::1]:%d is still bound after Bind failed", port)
	}
}

// TestServeBoundAfterShutdown: sockets bound, then Shutdown before they
// are served: ServeBound returns ErrServerClosed and logs no start-up
// line after "closing server", which would say the server is up.
func TestServeBoundAfterShutdown(t *testing.T) {
	var logs syncBuffer
	srv := &echo.Server{Logger: zerolog.New(&logs)}
	b, err := srv.Bind(t.Context(), "127.0.0.1:0", "udp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(srv, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeBound(b); !errors.Is(err, echo.ErrServerClosed) {
		t.Fatalf("ServeBound = %v, want ErrServerClosed", err)
	}
	if strings.Contains(logs.String(), "starting up") {
		t.Errorf("start-up lines after Shutdown:\n%s", logs.String())
	}
}

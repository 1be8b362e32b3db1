package echo_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

func TestSplitAddr(t *testing.T) {
	tests := []struct {
		addr    string
		host    string
		port    uint16
		wantErr bool
	}{
		{addr: "localhost:10000", host: "localhost", port: 10000},
		{addr: "127.0.0.1:0", host: "127.0.0.1", port: 0},
		{addr: ":0", host: "", port: 0},
		{addr: "[::1]:65535", host: "::1", port: 65535},
		{addr: "[fe80::1%lo]:7", host: "fe80::1%lo", port: 7},
		{addr: "127.0.0.1:65536", wantErr: true},
		{addr: "127.0.0.1:70000", wantErr: true},
		{addr: "127.0.0.1:-1", wantErr: true},
		{addr: "127.0.0.1:http", wantErr: true},
		{addr: "127.0.0.1:", wantErr: true},
		{addr: "127.0.0.1", wantErr: true},
		{addr: "::1:80", wantErr: true},
		{addr: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			host, port, err := echo.SplitAddr(tt.addr)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SplitAddr(%q) = %q, %d; want an error", tt.addr, host, port)
				}
				if !strings.HasPrefix(err.Error(), "echo: address ") {
					t.Errorf("error %q does not name the address", err)
				}
				return
			}
			if err != nil || host != tt.host || port != tt.port {
				t.Errorf("SplitAddr(%q) = %q, %d, %v; want %q, %d", tt.addr, host, port, err, tt.host, tt.port)
			}
		})
	}
}

// listenRetry calls srv.Listen, retrying when the port the kernel chose for
// the first address is taken on another (another test's, say).
func listenRetry(t *testing.T, srv *echo.Server) []net.Listener {
	t.Helper()
	for range 5 {
		lns, err := srv.Listen(t.Context())
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			t.Fatalf("Listen on %q: %v", srv.Addr, err)
		}
		t.Cleanup(func() {
			for _, ln := range lns {
				ln.Close()
			}
		})
		return lns
	}
	t.Skip("ports keep colliding")
	return nil
}

// serveListeners runs srv.ServeListeners(lns) and returns a function that
// shuts srv down and checks that both calls return as they should.
func serveListeners(t *testing.T, srv *echo.Server, lns []net.Listener) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.ServeListeners(lns) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := shutdown(srv, 5*time.Second); err != nil {
				t.Errorf("Shutdown = %v", err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, echo.ErrServerClosed) {
					t.Errorf("ServeListeners = %v, want ErrServerClosed", err)
				}
			case <-time.After(ioTimeout):
				t.Error("ServeListeners did not return after Shutdown")
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

func TestListenResolvedName(t *testing.T) {
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
	lns := listenRetry(t, srv)
	if len(lns) != 2 {
		t.Fatalf("Listen returned %d listeners, want one per address", len(lns))
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

	serveListeners(t, srv, lns)
	port := strconv.Itoa(a4.Port)
	checkEcho(t, net.JoinHostPort("127.0.0.1", port))
	checkEcho(t, net.JoinHostPort("::1", port))
}

func TestListenAddrs(t *testing.T) {
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
			lns := listenRetry(t, srv)
			if len(lns) != 1 {
				t.Fatalf("Listen returned %d listeners, want 1", len(lns))
			}
			if got := res.asked(); len(got) != 0 {
				t.Errorf("resolver asked for %q", got)
			}
			serveListeners(t, srv, lns)
			port := strconv.Itoa(portOf(t, lns[0].Addr()))
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

func TestListenDeduplicatesAddresses(t *testing.T) {
	mapped := netip.AddrFrom16(loopback4.As16())
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {mapped, loopback4, loopback4}}}
	srv := &echo.Server{Addr: "localhost:0", Resolver: res}
	lns := listenRetry(t, srv)
	if len(lns) != 1 {
		t.Fatalf("Listen returned %d listeners for one distinct address", len(lns))
	}
	if a := lns[0].Addr().(*net.TCPAddr); a.IP.To4() == nil || !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("listening on %v, want 127.0.0.1", a)
	}
	serveListeners(t, srv, lns)
	checkEcho(t, lns[0].Addr().String())
}

// TestListenLeavesResolverResultAlone: the addresses a Resolver returns
// belong to it (it may cache and share them); Listen must not rewrite them.
func TestListenLeavesResolverResultAlone(t *testing.T) {
	mapped := netip.AddrFrom16(loopback4.As16())
	cached := []netip.Addr{mapped, loopback4}
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": cached}}
	srv := &echo.Server{Addr: "localhost:0", Resolver: res}
	listenRetry(t, srv)
	if want := []netip.Addr{mapped, loopback4}; !slices.Equal(cached, want) {
		t.Errorf("after Listen the resolver's cached result is %v, want %v", cached, want)
	}
}

func TestListenErrors(t *testing.T) {
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
			lns, err := tt.srv.Listen(t.Context())
			for _, ln := range lns {
				ln.Close()
			}
			if err == nil {
				t.Fatalf("Listen on %q succeeded", tt.srv.Addr)
			}
			if len(lns) != 0 {
				t.Errorf("Listen returned %d listeners with its error", len(lns))
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

// TestListenClosesEarlierListeners: when the second address fails, the
// listener already open on the first is closed.
func TestListenClosesEarlierListeners(t *testing.T) {
	requireIPv6(t)
	busy := listenLocal(t) // 127.0.0.1:port is taken
	port := portOf(t, busy.Addr())
	if !portFreeOnIPv6(port) {
		t.Skipf("something listens on [::1]:%d", port)
	}
	res := &fakeResolver{addrs: map[string][]netip.Addr{"localhost": {loopback6, loopback4}}}
	srv := &echo.Server{Addr: fmt.Sprintf("localhost:%d", port), Resolver: res}
	lns, err := srv.Listen(context.Background())
	if !errors.Is(err, syscall.EADDRINUSE) {
		for _, ln := range lns {
			ln.Close()
		}
		t.Fatalf("Listen = %v, want EADDRINUSE for 127.0.0.1", err)
	}
	if !portFreeOnIPv6(port) {
		t.Errorf("[::1]:%d is still bound after Listen failed", port)
	}
}

package echo_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

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

// TestListenAndServeUDP serves a udp:// Addr through ListenAndServe, which
// Listen cannot do alone.
func TestListenAndServeUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "udp://" + pc.LocalAddr().String()
	pc.Close()
	srv := &echo.Server{Addr: addr}
	if _, err := srv.Listen(t.Context()); err == nil || !strings.Contains(err.Error(), "use Bind and ServeBound") {
		t.Errorf("Listen on udp:// = %v, want an error", err)
	}
	s := &serving{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = srv.ListenAndServe()
	}()
	c := &echo.Client{Addr: addr, Timeout: ioTimeout}
	deadline := time.Now().Add(ioTimeout)
	for {
		var out bytes.Buffer
		_, err := c.Send(t.Context(), seedMessages, &out)
		if errors.Is(err, syscall.ECONNREFUSED) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // not bound yet
			continue
		}
		if err != nil || out.String() != seedEcho {
			t.Errorf("Send = %q, %v", out.String(), err)
		}
		break
	}
	if err := shutdown(srv, ioTimeout); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
		t.Fatalf("ListenAndServe = %v", err)
	}
}

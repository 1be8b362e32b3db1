package echo_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{" 192.0.2.7 ", "192.0.2.7/32"},
		{"::1", "::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"::/0", "::/0"},
		{"", ""},
		{"10.0.0.0/33", ""},
		{"10.0.0/8", ""},
		{"localhost", ""},
		{"fe80::1%eth0", ""},
		{"10.0.0.0/8/8", ""},
		{"[::1]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := echo.ParsePrefix(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParsePrefix(%q) = %v, want an error", tt.in, p)
				}
				if !strings.HasPrefix(err.Error(), "echo: access list entry ") {
					t.Errorf("error %q does not name the entry", err)
				}
				return
			}
			if err != nil || p.String() != tt.want {
				t.Fatalf("ParsePrefix(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
			}
		})
	}
}

// FuzzParsePrefix: ParsePrefix never panics; what it accepts is a masked,
// valid prefix that contains the address written, and parses back to
// itself.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.7", "::1", "2001:db8::/32", "::ffff:10.0.0.0/104", "fe80::1%eth0", "1.2.3.4/33", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := echo.ParsePrefix(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p != p.Masked() {
			t.Fatalf("ParsePrefix(%q) = %v: not a valid masked prefix", s, p)
		}
		again, err := echo.ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %v, but ParsePrefix(%q) = %v, %v", s, p, p.String(), again, err)
		}
		if ip, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && !p.Contains(ip.Unmap()) {
			t.Fatalf("ParsePrefix(%q) = %v does not contain the address", s, p)
		}
	})
}

// dialFrom connects to addr from the loopback address src (any of
// 127.0.0.0/8 works on Linux), closing the connection when the test ends.
func dialFrom(t *testing.T, src, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from %s (a loopback address other than 127.0.0.1 may be unusable here): %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// expectRefused checks that the server closed c without echoing anything.
func expectRefused(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	n, err := c.Read(make([]byte, 16))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a refused connection read %d bytes, %v; want end of stream or a reset at once", n, err)
	}
}

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// TestAccessList: peers are refused or served as ncat's --allow and --deny
// would: deny wins, a non-empty allow list admits only its prefixes.
func TestAccessList(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []netip.Prefix
		served      []string // source addresses that must be served
		refused     []string // and those that must be refused
	}{
		{name: "no lists", served: []string{"127.0.0.1", "127.0.0.2"}},
		{name: "allow one", allow: prefixes("127.0.0.2/32"), served: []string{"127.0.0.2"}, refused: []string{"127.0.0.1", "127.0.0.3"}},
		{name: "deny one", deny: prefixes("127.0.0.3/32"), served: []string{"127.0.0.1", "127.0.0.2"}, refused: []string{"127.0.0.3"}},
		{name: "deny wins", allow: prefixes("127.0.0.0/8"), deny: prefixes("127.0.0.3/32"), served: []string{"127.0.0.2"}, refused: []string{"127.0.0.3"}},
		{name: "allow ipv6 only", allow: prefixes("::1/128"), refused: []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			var logs syncBuffer
			srv := &echo.Server{Allow: tt.allow, Deny: tt.deny, Observer: rec, Logger: zerolog.New(&logs)}
			ln := listenLocal(t)
			serve(t, srv, ln)
			for _, src := range tt.served {
				roundTrip(t, dialFrom(t, src, ln.Addr().String()), []byte("hello from "+src))
			}
			for _, src := range tt.refused {
				expectRefused(t, dialFrom(t, src, ln.Addr().String()))
			}
			rec.waitClosed(t, echo.CloseDenied, len(tt.refused))
			if got := rec.closedCount(echo.CloseDenied); got != len(tt.refused) {
				t.Errorf("%d connections closed as denied, want %d", got, len(tt.refused))
			}
			srv.Close() // logs what is held back
			if got := deniedLogged(t, logs.String()); got != len(tt.refused) {
				t.Errorf("%d refusals logged or counted as held back, want %d:\n%s", got, len(tt.refused), logs.String())
			}
			if got := rec.received.Load(); got != int64(len(tt.served))*int64(len("hello from 127.0.0.x")) {
				t.Errorf("received %d bytes: a refused peer's bytes were read?", got)
			}
			rec.check(t)
		})
	}
}

// deniedLogged counts the connections the access list refused in a JSON
// log: each line, and the ones it says were held back.
func deniedLogged(t *testing.T, log string) int {
	t.Helper()
	n := 0
	for _, l := range parseLog(t, log) {
		switch {
		case strings.HasPrefix(l.Message, "connection refused"):
			n += 1 + l.Unlogged
			if l.Level != "info" || l.Reason != "denied" {
				t.Errorf("refusal logged at %s with reason %q, want info and denied", l.Level, l.Reason)
			}
		case strings.Contains(l.Message, "refused by the access list since the last report"):
			n += l.Unlogged
		}
	}
	return n
}

// TestDeniedFloodLogged: a denied peer that reconnects in a loop gets a
// line a second, each with the count held back since the last, and the
// counts add up, on both engines.
func TestDeniedFloodLogged(t *testing.T) {
	const conns = 50
	for _, v := range []struct {
		name string
		srv  func(*echo.Server) *echo.Server
	}{{"loops", func(s *echo.Server) *echo.Server { return s }}, {"goroutines", echo.WithoutLoops}} {
		t.Run(v.name, func(t *testing.T) {
			rec := newRecorder()
			var logs syncBuffer
			srv := v.srv(&echo.Server{Deny: prefixes("127.0.0.3/32"), Observer: rec, Logger: zerolog.New(&logs)})
			ln := listenLocal(t)
			serve(t, srv, ln)
			for range conns {
				expectRefused(t, dialFrom(t, "127.0.0.3", ln.Addr().String()))
			}
			rec.waitClosed(t, echo.CloseDenied, conns)
			if err := shutdown(srv, ioTimeout); err != nil {
				t.Fatal(err)
			}
			lines := strings.Count(logs.String(), "address not allowed")
			if got := deniedLogged(t, logs.String()); got != conns || lines > conns/2 {
				t.Errorf("%d refusals counted in %d lines, want %d in a line a second:\n%s", got, lines, conns, logs.String())
			}
		})
	}
}

// TestPeerAllowed: the exported decision, which other listeners (the
// metrics port) use, follows the server's rule: deny wins, a non-empty
// allow list admits only its prefixes, IPv4-mapped peers compare as IPv4,
// and peers without an IP address are admitted.
func TestPeerAllowed(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	tests := []struct {
		name        string
		allow, deny []netip.Prefix
		peer        net.Addr
		want        bool
	}{
		{"no lists", nil, nil, tcp("192.0.2.1:5000"), true},
		{"denied", nil, prefixes("127.0.0.0/8"), tcp("127.0.0.1:5000"), false},
		{"not denied", nil, prefixes("127.0.0.0/8"), tcp("[::1]:5000"), true},
		{"allowed", prefixes("127.0.0.2/32"), nil, tcp("127.0.0.2:5000"), true},
		{"not in allow", prefixes("127.0.0.2/32"), nil, tcp("127.0.0.1:5000"), false},
		{"deny wins", prefixes("127.0.0.0/8"), prefixes("127.0.0.1/32"), tcp("127.0.0.1:5000"), false},
		{"mapped peer compares as IPv4", nil, prefixes("127.0.0.0/8"), tcp("[::ffff:127.0.0.1]:5000"), false},
		{"UDP peer", nil, prefixes("127.0.0.0/8"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:53")), false},
		{"Unix peer", prefixes("127.0.0.2/32"), nil, &net.UnixAddr{Name: "@", Net: "unix"}, true},
		{"nil peer", prefixes("127.0.0.2/32"), nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := echo.PeerAllowed(tt.allow, tt.deny, tt.peer); got != tt.want {
				t.Errorf("PeerAllowed(%v, %v, %v) = %v, want %v", tt.allow, tt.deny, tt.peer, got, tt.want)
			}
		})
	}
}

// TestMaxConns: past MaxConns, new connections are closed at once (not
// left in the backlog), counted, and warned about at most once a second;
// once a connection closes, a new one is served again.
func TestMaxConns(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			rec := newRecorder()
			var logs syncBuffer
			srv := v.server(&logs)
			srv.MaxConns = 2
			srv.Observer = rec
			ln := v.listen(t)
			serve(t, srv, ln)
			addr := ln.Addr().String()

			c1 := dial(t, addr)
			c2 := dial(t, addr)
			roundTrip(t, c1, []byte("one"))
			roundTrip(t, c2, []byte("two"))
			const over = 5
			for range over {
				expectRefused(t, dial(t, addr))
			}
			rec.waitClosed(t, echo.CloseLimit, over)
			// The first two are still served.
			roundTrip(t, c1, []byte("still one"))

			c1.Close()
			rec.waitClosed(t, echo.CloseEOF, 1)
			roundTrip(t, dial(t, addr), []byte("three"))

			warns := 0
			for _, l := range parseLog(t, logs.String()) {
				if l.Level == "warn" && strings.HasPrefix(l.Message, "connection limit reached") {
					warns++
				}
			}
			if warns != 1 {
				t.Errorf("%d limit warnings for %d refusals within a second, want 1:\n%s", warns, over, logs.String())
			}
			rec.check(t)
		})
	}
}

// TestMaxConnsPerIP: the limit applies to each peer address on its own.
func TestMaxConnsPerIP(t *testing.T) {
	rec := newRecorder()
	var logs syncBuffer
	srv := &echo.Server{MaxConnsPerIP: 2, Observer: rec, Logger: zerolog.New(&logs)}
	ln := listenLocal(t)
	serve(t, srv, ln)
	addr := ln.Addr().String()

	a1 := dialFrom(t, "127.0.0.1", addr)
	a2 := dialFrom(t, "127.0.0.1", addr)
	roundTrip(t, a1, []byte("a1"))
	roundTrip(t, a2, []byte("a2"))
	expectRefused(t, dialFrom(t, "127.0.0.1", addr))
	// Another address still gets its own two.
	b1 := dialFrom(t, "127.0.0.2", addr)
	b2 := dialFrom(t, "127.0.0.2", addr)
	roundTrip(t, b1, []byte("b1"))
	roundTrip(t, b2, []byte("b2"))
	expectRefused(t, dialFrom(t, "127.0.0.2", addr))
	rec.waitClosed(t, echo.CloseLimit, 2)

	// Closing one frees a place for that address only.
	a1.Close()
	rec.waitClosed(t, echo.CloseEOF, 1)
	roundTrip(t, dialFrom(t, "127.0.0.1", addr), []byte("a3"))
	expectRefused(t, dialFrom(t, "127.0.0.2", addr))
	rec.waitClosed(t, echo.CloseLimit, 3)
	if !strings.Contains(logs.String(), "per-IP connection limit reached") {
		t.Errorf("no per-IP limit warning logged:\n%s", logs.String())
	}
	rec.check(t)
}

// TestLimitsOverManyConnections: every connection that closes gives its
// place back, so sequential clients are never refused.
func TestLimitsOverManyConnections(t *testing.T) {
	rec := newRecorder()
	srv := &echo.Server{MaxConns: 3, MaxConnsPerIP: 3, Observer: rec}
	ln := listenLocal(t)
	serve(t, srv, ln)
	addr := ln.Addr().String()
	// Many connections one after the other: each closes before the next,
	// so none is refused however many there are.
	for i := range 50 {
		cl := &echo.Client{Addr: addr, Timeout: ioTimeout}
		if _, err := cl.Send(t.Context(), seedMessages, nil); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		rec.waitClosed(t, echo.CloseEOF, i+1)
	}
	if got := rec.closedCount(echo.CloseLimit); got != 0 {
		t.Errorf("%d sequential connections refused by the limit, want 0", got)
	}
}

// TestAccessListUDP: on UDP, datagrams from denied senders are dropped
// unanswered; the listener reports itself to the Observer for readiness.
func TestAccessListUDP(t *testing.T) {
	rec := newRecorder()
	srv := &echo.Server{Deny: prefixes("127.0.0.3/32"), Observer: rec}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServePacket(pc) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	addr := pc.LocalAddr().(*net.UDPAddr)

	echoFrom := func(src string) ([]byte, error) {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, addr)
		if err != nil {
			t.Skipf("cannot send from %s: %v", src, err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("datagram from " + src)); err != nil {
			return nil, err
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		return buf[:n], err
	}
	got, err := echoFrom("127.0.0.1")
	if err != nil || string(got) != "datagram from 127.0.0.1" {
		t.Fatalf("allowed sender: echo %q, %v", got, err)
	}
	if got, err := echoFrom("127.0.0.3"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("denied sender: echo %q, %v; want no answer", got, err)
	}
	rec.mu.Lock()
	if rec.listening["udp://"+addr.String()] != 1 {
		t.Errorf("ServePacket did not report %s as accepting: %v", addr, rec.listening)
	}
	rec.mu.Unlock()
}

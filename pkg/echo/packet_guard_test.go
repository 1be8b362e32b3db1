package echo_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

// udpObserver is an echo.PacketObserver whose sockets count datagrams,
// bytes and drops (an echo.PacketDropObserver).
type udpObserver struct {
	datagrams, received, sent atomic.Int64

	mu        sync.Mutex
	dropped   map[echo.DropReason]int
	listening map[string]bool
	changed   chan struct{} // signalled on every event
}

func newUDPObserver() *udpObserver {
	return &udpObserver{dropped: map[echo.DropReason]int{}, listening: map[string]bool{}, changed: make(chan struct{}, 1)}
}

func (o *udpObserver) signal() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *udpObserver) Listening(listener string, accepting bool) {
	o.mu.Lock()
	o.listening[listener] = accepting
	o.mu.Unlock()
	o.signal()
}

func (o *udpObserver) AcceptError(string, error)                       {}
func (o *udpObserver) ConnAccepted(string, net.Addr) echo.ConnObserver { return nil }
func (o *udpObserver) PacketListener(string) echo.ConnObserver         { return udpSocketObserver{o} }

type udpSocketObserver struct{ o *udpObserver }

func (s udpSocketObserver) Received(n int) {
	s.o.datagrams.Add(1)
	s.o.received.Add(int64(n))
	s.o.signal()
}

func (s udpSocketObserver) Sent(n int, _ time.Duration) {
	s.o.sent.Add(int64(n))
	s.o.signal()
}

func (s udpSocketObserver) Closed(echo.CloseReason) {}

func (s udpSocketObserver) Dropped(r echo.DropReason) {
	s.o.mu.Lock()
	s.o.dropped[r]++
	s.o.mu.Unlock()
	s.o.signal()
}

func (o *udpObserver) drops(r echo.DropReason) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped[r]
}

func (o *udpObserver) totalDrops() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.dropped {
		n += c
	}
	return n
}

// waitFor waits, up to ioTimeout, until cond holds, re-checking on every
// event.
func (o *udpObserver) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(ioTimeout)
	for !cond() {
		select {
		case <-o.changed:
		case <-time.After(10 * time.Millisecond): // events coalesce
		case <-deadline:
			t.Fatalf("waited %v for %s; datagrams %d, drops %v", ioTimeout, what, o.datagrams.Load(), o.snapshot())
		}
	}
}

func (o *udpObserver) snapshot() map[echo.DropReason]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := map[echo.DropReason]int{}
	for r, n := range o.dropped {
		m[r] = n
	}
	return m
}

// serveUDP serves pc with srv until the test ends and waits until pc is
// served (told to o).
func serveUDP(t *testing.T, srv *echo.Server, o *udpObserver, pc net.PacketConn) netip.AddrPort {
	t.Helper()
	addr := "udp://" + pc.LocalAddr().String() // the listener's name, as --addr takes it
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServePacket(pc)
	}()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-done:
		case <-time.After(ioTimeout):
			t.Errorf("ServePacket did not return after Close")
		}
	})
	o.waitFor(t, addr+" served", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.listening[addr]
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func listenUDP(t *testing.T, network, address string) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// sendRawUDP sends payload count times as a UDP datagram from
// 127.0.0.1:srcPort to dst (on 127.0.0.1) through a raw socket, so that
// the source can be any port: 0, 7, the server's own. It skips the test
// where raw sockets are not permitted (they need CAP_NET_RAW; CI runs the
// tests as root).
func sendRawUDP(t *testing.T, srcPort uint16, dst netip.AddrPort, payload []byte, count int) {
	t.Helper()
	c, err := net.ListenPacket("ip4:udp", "127.0.0.1")
	if err != nil {
		t.Skipf("no raw socket to forge a source port: %v", err)
	}
	defer c.Close()
	p := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(p[0:], srcPort)
	binary.BigEndian.PutUint16(p[2:], dst.Port())
	binary.BigEndian.PutUint16(p[4:], uint16(len(p)))
	// p[6:8], the checksum, stays 0: none, which UDP over IPv4 allows.
	copy(p[8:], payload)
	for range count {
		if _, err := c.WriteTo(p, &net.IPAddr{IP: dst.Addr().AsSlice()}); err != nil {
			t.Fatalf("raw send from port %d: %v", srcPort, err)
		}
	}
}

// barrier sends a datagram from a fresh socket and waits for its echo:
// whatever the server read before it has been dealt with by then, and at
// least a round trip has passed for a loop to show.
func barrier(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	c := dialUDP(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), addr.Port()).String())
	if got := udpRoundTrip(t, c, []byte("barrier")); string(got) != "barrier" {
		t.Fatalf("barrier echo %q", got)
	}
}

// staysFlat checks that the server reads no datagram for a while: an echo
// loop, once started, reads tens of thousands a second.
func staysFlat(t *testing.T, o *udpObserver, want int64) {
	t.Helper()
	for range 5 {
		if got := o.datagrams.Load(); got != want {
			t.Fatalf("the server has read %d datagrams; want %d: it is answering itself", got, want)
		}
		time.Sleep(20 * time.Millisecond) // looking for a loop, not waiting for one
	}
}

// TestServePacketSelfAddressed sends one datagram whose source is the
// server's own socket (CERT CA-1996-01): answered, it would come back for
// ever. It is dropped, and the server's datagram count stays flat.
func TestServePacketSelfAddressed(t *testing.T) {
	for _, tt := range []struct{ name, network, address string }{
		{"bound to loopback", "udp4", "127.0.0.1:0"},
		{"bound to every interface", "udp4", "0.0.0.0:0"},
		{"dual-stack, every interface", "udp", ":0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := newUDPObserver()
			srv := &echo.Server{Observer: o}
			addr := serveUDP(t, srv, o, listenUDP(t, tt.network, tt.address))
			dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), addr.Port())
			sendRawUDP(t, addr.Port(), dst, []byte("loop"), 1)
			o.waitFor(t, "the self-addressed datagram dropped", func() bool { return o.drops(echo.DropOwnAddress) == 1 })
			barrier(t, addr)
			staysFlat(t, o, 1) // the barrier
			if n := o.totalDrops(); n != 1 {
				t.Errorf("%d drops (%v); want the one", n, o.snapshot())
			}
		})
	}
}

// TestServePacketFromItsOtherSocket: a Server serving two sockets gets,
// on one, a datagram from the other. Answered, the two would answer each
// other for ever; it is dropped at once.
func TestServePacketFromItsOtherSocket(t *testing.T) {
	o := newUDPObserver()
	srv := &echo.Server{Observer: o}
	pcA := listenUDP(t, "udp4", "127.0.0.1:0")
	serveUDP(t, srv, o, pcA)
	b := serveUDP(t, srv, o, listenUDP(t, "udp4", "127.0.0.1:0"))
	// The served socket A sends, as if its peer had forged the source.
	if _, err := pcA.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(b)); err != nil {
		t.Fatal(err)
	}
	o.waitFor(t, "the datagram from A dropped", func() bool { return o.drops(echo.DropOwnAddress) == 1 })
	barrier(t, b)
	staysFlat(t, o, 1)
}

// TestServePacketTwoServersNoPingPong: two independent echo servers, one
// sent a datagram from the other's port, as a forger would (measured
// before the guard: 18,600 datagrams a second each, for ever). Neither
// knows the other's socket; the per-source rate limit ends the ping-pong
// within a burst, and the counts stay flat afterwards.
func TestServePacketTwoServersNoPingPong(t *testing.T) {
	oA, oB := newUDPObserver(), newUDPObserver()
	pcA := listenUDP(t, "udp4", "127.0.0.1:0")
	serveUDP(t, &echo.Server{Observer: oA}, oA, pcA)
	b := serveUDP(t, &echo.Server{Observer: oB}, oB, listenUDP(t, "udp4", "127.0.0.1:0"))
	if _, err := pcA.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(b)); err != nil {
		t.Fatal(err)
	}
	oB.waitFor(t, "the ping-pong to end", func() bool {
		return oA.drops(echo.DropRateLimit)+oB.drops(echo.DropRateLimit) > 0
	})
	total := oA.datagrams.Load() + oB.datagrams.Load()
	for range 5 {
		time.Sleep(20 * time.Millisecond) // looking for a loop, not waiting for one
		if now := oA.datagrams.Load() + oB.datagrams.Load(); now != total {
			t.Fatalf("the two servers read %d datagrams, then %d: still answering each other", total, now)
		}
	}
	// Each answers at most its burst, 100 datagrams, and what refilled
	// meanwhile.
	if total > 2*(echo.DefaultUDPDatagramsPerSource+50) {
		t.Errorf("the ping-pong ran for %d datagrams before it ended", total)
	}
}

// TestServePacketBadSourcePorts forges datagrams from port 0, from the
// reflector ports and from ports below 1024: each is dropped for its
// reason, and only UDPAllowLowPorts lets the other low ports through.
func TestServePacketBadSourcePorts(t *testing.T) {
	tests := []struct {
		port     uint16
		lowPorts bool
		want     echo.DropReason
		answered bool
	}{
		{port: 0, want: echo.DropPortZero},
		{port: 0, lowPorts: true, want: echo.DropPortZero},
		{port: 7, want: echo.DropReflectorPort},
		{port: 19, lowPorts: true, want: echo.DropReflectorPort},
		{port: 123, lowPorts: true, want: echo.DropReflectorPort},
		{port: 11211, lowPorts: true, want: echo.DropReflectorPort},
		{port: 500, want: echo.DropLowPort},
		{port: 1023, want: echo.DropLowPort},
		{port: 500, lowPorts: true, answered: true},
		{port: 1024, answered: true},
	}
	for _, tt := range tests {
		name := strconv.Itoa(int(tt.port))
		if tt.lowPorts {
			name += " low ports allowed"
		}
		t.Run(name, func(t *testing.T) {
			o := newUDPObserver()
			srv := &echo.Server{Observer: o, UDPAllowLowPorts: tt.lowPorts}
			addr := serveUDP(t, srv, o, listenUDP(t, "udp4", "127.0.0.1:0"))
			sendRawUDP(t, tt.port, addr, []byte("from a low port"), 1)
			if tt.answered {
				o.waitFor(t, "the datagram answered", func() bool { return o.sent.Load() == int64(len("from a low port")) })
				return
			}
			o.waitFor(t, "a drop for "+tt.want.String(), func() bool { return o.drops(tt.want) == 1 })
			barrier(t, addr)
			staysFlat(t, o, 1)
		})
	}
}

// logLines returns the log lines of level whose message contains s.
func logLines(t *testing.T, logs *syncBuffer, level, s string) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range parseLog(t, logs.String()) {
		if l.Level == level && strings.Contains(l.Message, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestServePacketDropLogOncePerSecond floods the server with datagrams it
// drops: from source port 0 (before the guard, each failed to be answered
// and wrote a warn line: 340,000 lines in 5s), and from a denied sender.
// Each reason is logged at most once a second, with the count of those
// not logged.
func TestServePacketDropLogOncePerSecond(t *testing.T) {
	const flood = 300
	for _, tt := range []struct {
		name  string
		srv   func() *echo.Server
		level string
		send  func(t *testing.T, addr netip.AddrPort, i int)
		want  echo.DropReason
	}{
		{"source port 0", func() *echo.Server { return &echo.Server{} }, "warn", func(t *testing.T, addr netip.AddrPort, _ int) {
			sendRawUDP(t, 0, addr, []byte("zero"), 1)
		}, echo.DropPortZero},
		{"denied", func() *echo.Server { return &echo.Server{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}} }, "info", func(t *testing.T, addr netip.AddrPort, _ int) {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("denied")); err != nil {
				t.Fatal(err)
			}
		}, echo.DropDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			o := newUDPObserver()
			srv := tt.srv()
			srv.Observer = o
			srv.Logger = zerolog.New(&logs).Level(zerolog.InfoLevel)
			addr := serveUDP(t, srv, o, listenUDP(t, "udp4", "127.0.0.1:0"))
			start := time.Now()
			for i := range flood {
				tt.send(t, addr, i)
				if i%50 == 49 { // the socket's buffer holds them all
					o.waitFor(t, "the drops so far", func() bool { return o.drops(tt.want) == i+1 })
				}
			}
			elapsed := time.Since(start)
			lines := logLines(t, &logs, tt.level, "dropped unanswered")
			if len(lines) < 1 || len(lines) > 2+int(elapsed/time.Second) {
				t.Fatalf("%d log lines for %d drops in %v; want one, and at most one a second:\n%s", len(lines), flood, elapsed, logs.String())
			}
			if l := lines[0]; l.Reason != tt.want.String() || l.Logger != "main" {
				t.Errorf("log line %+v; want reason %s on main", l, tt.want)
			}
			if n := len(parseLog(t, logs.String())); n != len(lines) {
				t.Errorf("%d log lines in all, %d about drops:\n%s", n, len(lines), logs.String())
			}
		})
	}
}

// failingWrites is a packet socket whose every write fails, as one to a
// peer the kernel refuses does.
type failingWrites struct{ net.PacketConn }

func (failingWrites) WriteTo([]byte, net.Addr) (int, error) {
	return 0, errors.New("sendto: operation not permitted")
}

// TestServePacketWriteErrorLogOncePerSecond: a write that fails fails for
// every datagram of a flood; it is logged at most once a second.
func TestServePacketWriteErrorLogOncePerSecond(t *testing.T) {
	var logs syncBuffer
	o := newUDPObserver()
	srv := &echo.Server{Observer: o, Logger: zerolog.New(&logs).Level(zerolog.InfoLevel), UDPRatePerSource: &echo.PacketRate{}}
	pc := listenUDP(t, "udp4", "127.0.0.1:0")
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	serveUDP(t, srv, o, failingWrites{pc})
	c := dialUDP(t, addr.String())
	const flood = 300
	start := time.Now()
	for i := range flood {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			o.waitFor(t, "the datagrams so far", func() bool { return o.datagrams.Load() == int64(i+1) })
		}
	}
	elapsed := time.Since(start)
	lines := logLines(t, &logs, "warn", "write error")
	if len(lines) < 1 || len(lines) > 2+int(elapsed/time.Second) {
		t.Fatalf("%d write error lines for %d failed writes in %v; want at most one a second", len(lines), flood, elapsed)
	}
}

// TestServePacketNeverAnswersMore: each datagram gets exactly one answer,
// of exactly its size, and the server sends no byte more than it read.
func TestServePacketNeverAnswersMore(t *testing.T) {
	o := newUDPObserver()
	addr := serveUDP(t, &echo.Server{Observer: o}, o, listenUDP(t, "udp4", "127.0.0.1:0"))
	c := dialUDP(t, addr.String())
	total := 0
	buf := make([]byte, 70000)
	for i, size := range []int{0, 1, 100, 1472, echo.MaxDatagramSize} {
		p := randomBytes(uint64(i), size)
		if got := udpRoundTrip(t, c, p); !bytes.Equal(got, p) {
			t.Fatalf("%d-byte datagram answered with %d bytes", size, len(got))
		}
		total += size
		// No second answer: a short wait, only to catch one.
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			t.Fatalf("%d-byte datagram answered twice (again %d bytes)", size, n)
		}
	}
	o.waitFor(t, "every echo counted", func() bool { return o.sent.Load() == int64(total) })
	if got, sent := o.received.Load(), o.sent.Load(); sent > got || got != int64(total) {
		t.Errorf("received %d bytes, sent %d; want %d each", got, sent, total)
	}
}

// TestServePacketRateLimit: one source gets its burst and what refills,
// the rest is dropped; another source is answered meanwhile.
func TestServePacketRateLimit(t *testing.T) {
	o := newUDPObserver()
	srv := &echo.Server{Observer: o, UDPRatePerSource: &echo.PacketRate{Datagrams: 5}}
	addr := serveUDP(t, srv, o, listenUDP(t, "udp4", "127.0.0.1:0"))
	c := dialUDP(t, addr.String())
	const sent = 30
	start := time.Now()
	for range sent {
		if _, err := c.Write([]byte("burst")); err != nil {
			t.Fatal(err)
		}
	}
	o.waitFor(t, "every datagram answered or dropped", func() bool {
		return o.datagrams.Load()+int64(o.drops(echo.DropRateLimit)) == sent
	})
	answered := o.datagrams.Load()
	refilled := int64(5*time.Since(start)/time.Second) + 1
	if answered < 5 || answered > 5+refilled {
		t.Errorf("%d of %d datagrams answered; want the burst of 5 (and %d refilled at most)", answered, sent, refilled)
	}
	other, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Skipf("cannot send from 127.0.0.2: %v", err)
	}
	defer other.Close()
	if got := udpRoundTrip(t, other, []byte("other")); string(got) != "other" {
		t.Errorf("another source got %q", got)
	}
}

// TestServePacketInvalidRate: a rate out of bounds is refused before
// anything is served, and the socket closed.
func TestServePacketInvalidRate(t *testing.T) {
	for _, r := range []echo.PacketRate{{Datagrams: -1}, {Bytes: -1}, {Datagrams: echo.MaxUDPDatagramsPerSource + 1}, {Bytes: echo.MaxUDPBytesPerSource + 1}} {
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		srv := &echo.Server{UDPRatePerSource: &r}
		if err := srv.ServePacket(pc); !errors.Is(err, echo.ErrInvalidPacketRate) {
			t.Errorf("ServePacket with %+v = %v; want ErrInvalidPacketRate", r, err)
		}
		if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("ServePacket left the socket open: write gave %v", err)
		}
	}
}

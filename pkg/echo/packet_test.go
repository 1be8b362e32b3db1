package echo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// servePacketLocal runs srv.ServePacket on a UDP socket bound to address
// on network until the test ends, and returns the socket's address and the
// running ServePacket.
func servePacketLocal(t *testing.T, srv *echo.Server, network, address string) (string, *serving) {
	t.Helper()
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		t.Fatal(err)
	}
	s := &serving{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = srv.ServePacket(pc)
	}()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-s.done:
		case <-time.After(ioTimeout):
			t.Errorf("ServePacket did not return after Close")
		}
	})
	return pc.LocalAddr().String(), s
}

// dialUDP connects a UDP socket to addr for the test.
func dialUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// udpRoundTrip sends p as one datagram and returns the datagram that comes
// back.
func udpRoundTrip(t *testing.T, c *net.UDPConn, p []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(p); err != nil {
		t.Fatalf("send %d bytes: %v", len(p), err)
	}
	buf := make([]byte, 70000)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("echo of %d bytes: %v", len(p), err)
	}
	return buf[:n]
}

func TestServePacketEchoesEachDatagram(t *testing.T) {
	for _, srv := range []struct {
		name string
		srv  func() *echo.Server
	}{
		{"quiet", func() *echo.Server { return &echo.Server{} }},
		{"debug logged", func() *echo.Server { return &echo.Server{Logger: debugLogger(&syncBuffer{})} }},
	} {
		t.Run(srv.name, func(t *testing.T) {
			addr, _ := servePacketLocal(t, srv.srv(), "udp", "127.0.0.1:0")
			c := dialUDP(t, addr)
			// 1 byte, a datagram that fits Ethernet's MTU (1500 - 20 - 8),
			// the largest UDP payload over IPv4, an empty one, and every
			// byte value.
			for i, size := range []int{1, 1472, echo.MaxDatagramSize, 0, 256} {
				p := randomBytes(uint64(i), size)
				if size == 256 {
					p = allBytesT()
				}
				if got := udpRoundTrip(t, c, p); !bytes.Equal(got, p) {
					t.Fatalf("%d-byte datagram came back as %d bytes, different", size, len(got))
				}
			}
		})
	}
}

func allBytesT() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestServePacketIPv6(t *testing.T) {
	requireIPv6(t)
	addr, _ := servePacketLocal(t, &echo.Server{}, "udp6", "[::1]:0")
	c := dialUDP(t, addr)
	// IPv6 carries 20 bytes more than IPv4: 65535 - 8.
	p := randomBytes(6, 65527)
	if got := udpRoundTrip(t, c, p); !bytes.Equal(got, p) {
		t.Fatalf("65527-byte datagram came back as %d bytes, different", len(got))
	}
}

func TestServePacketManyPeers(t *testing.T) {
	// A thousand datagrams from one address, 127.0.0.1: past the default
	// per-source rate, which TestServePacketRateLimit tests.
	addr, _ := servePacketLocal(t, &echo.Server{UDPRatePerSource: &echo.PacketRate{}}, "udp", "127.0.0.1:0")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			c, err := net.Dial("udp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			buf := make([]byte, 2048)
			for j := range 20 {
				p := randomBytes(uint64(i*100+j), 1+(i*37+j)%1400)
				c.SetDeadline(time.Now().Add(ioTimeout))
				if _, err := c.Write(p); err != nil {
					errs <- err
					return
				}
				n, err := c.Read(buf)
				if err != nil {
					errs <- fmt.Errorf("peer %d datagram %d: %w", i, j, err)
					return
				}
				if !bytes.Equal(buf[:n], p) {
					errs <- fmt.Errorf("peer %d datagram %d: echo differs", i, j)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestServePacketLogs checks the per-peer logger name and the seed's
// received/sent lines, in order, at debug level.
func TestServePacketLogs(t *testing.T) {
	var logs syncBuffer
	addr, _ := servePacketLocal(t, &echo.Server{Logger: debugLogger(&logs)}, "udp", "127.0.0.1:0")
	c := dialUDP(t, addr)
	for _, m := range seedMessages {
		udpRoundTrip(t, c, m)
	}
	udpRoundTrip(t, c, []byte("it's\n"))
	name := "echo_127.0.0.1_" + strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	var want []string
	for _, m := range append(seedMessages, []byte("it's\n")) {
		want = append(want, "received "+echo.Quote(m), "sent "+echo.Quote(m))
	}
	deadline := time.Now().Add(ioTimeout)
	for {
		var got []string
		for _, l := range parseLog(t, logs.String()) {
			if l.Logger != name || l.Level != "debug" || l.Peer != c.LocalAddr().String() {
				t.Fatalf("log line %+v: want logger %s, level debug, peer %s", l, name, c.LocalAddr())
			}
			got = append(got, l.Message)
		}
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log:\n%s\nwant messages:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		time.Sleep(10 * time.Millisecond) // "sent" is logged after the write
	}
}

// TestServePacketPeerNameDualStack checks that an IPv4 peer of a socket
// bound to every interface is named as IPv4, as TCP peers are.
func TestServePacketPeerNameDualStack(t *testing.T) {
	requireIPv6(t)
	var logs syncBuffer
	addr, _ := servePacketLocal(t, &echo.Server{Logger: debugLogger(&logs)}, "udp", ":0")
	_, port, _ := net.SplitHostPort(addr)
	c := dialUDP(t, "127.0.0.1:"+port)
	udpRoundTrip(t, c, []byte("x"))
	want := "echo_127.0.0.1_" + strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	if l := parseLog(t, logs.String()); len(l) == 0 || l[0].Logger != want {
		t.Fatalf("log %q: want logger %s", logs.String(), want)
	}
}

func TestServePacketShutdown(t *testing.T) {
	for _, stop := range []struct {
		name string
		stop func(*echo.Server) error
	}{
		{"Shutdown", func(s *echo.Server) error { return shutdown(s, ioTimeout) }},
		{"Close", (*echo.Server).Close},
	} {
		t.Run(stop.name, func(t *testing.T) {
			srv := &echo.Server{}
			addr, done := servePacketLocal(t, srv, "udp", "127.0.0.1:0")
			udpRoundTrip(t, dialUDP(t, addr), []byte("before"))
			if err := stop.stop(srv); err != nil {
				t.Fatalf("%s: %v", stop.name, err)
			}
			if err := done.wait(t, ioTimeout); !errors.Is(err, echo.ErrServerClosed) {
				t.Fatalf("ServePacket = %v, want ErrServerClosed", err)
			}
			// The socket is closed: the port can be bound again.
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				t.Fatalf("port still bound after %s: %v", stop.name, err)
			}
			pc.Close()
		})
	}
}

func TestServePacketAfterShutdown(t *testing.T) {
	srv := &echo.Server{}
	if err := shutdown(srv, time.Second); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ServePacket(pc); !errors.Is(err, echo.ErrServerClosed) {
		t.Fatalf("ServePacket after Shutdown = %v, want ErrServerClosed", err)
	}
	if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ServePacket left the socket open: write gave %v", err)
	}
}

// TestServePacketFloodMemory sends a flood of datagrams and checks that the
// server allocates nothing per datagram: it reuses its buffers.
func TestServePacketFloodMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("flood")
	}
	addr, _ := servePacketLocal(t, &echo.Server{UDPRatePerSource: &echo.PacketRate{}}, "udp", "127.0.0.1:0")
	c := dialUDP(t, addr)
	p := randomBytes(9, 1400)
	buf := make([]byte, 2048)
	udpRoundTrip(t, c, p) // warm up: the readers' buffers exist
	const n = 5000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if allocs := after.Mallocs - before.Mallocs; allocs > n/10 {
		t.Errorf("%d allocations for %d datagrams: the server allocates per datagram", allocs, n)
	}
	if grown := int64(after.TotalAlloc - before.TotalAlloc); grown > 1<<20 {
		t.Errorf("%d bytes allocated for %d datagrams", grown, n)
	}
}

func TestSendPackets(t *testing.T) {
	addr, _ := servePacketLocal(t, &echo.Server{}, "udp", "127.0.0.1:0")
	var logs syncBuffer
	var out bytes.Buffer
	messages := append(seedMessages, randomBytes(1, 1472), []byte{}, allBytesT())
	c := &echo.Client{Addr: "udp://" + addr, Timeout: ioTimeout, Logger: debugLogger(&logs)}
	res, err := c.Send(t.Context(), messages, &out) // Send is SendPackets for udp://
	if err != nil {
		t.Fatalf("Send: %v\n%s", err, logs.String())
	}
	want := bytes.Join(messages, nil)
	if !bytes.Equal(out.Bytes(), want) || res.Sent != int64(len(want)) || res.Received != int64(len(want)) {
		t.Errorf("echo %d bytes, result %+v; want %d bytes", out.Len(), res, len(want))
	}
	var msgs []string
	for _, l := range parseLog(t, logs.String()) {
		if l.Logger != "echo_client" {
			t.Errorf("log line from %q", l.Logger)
		}
		msgs = append(msgs, l.Message)
	}
	wantLog := []string{"connecting to 127.0.0.1 port " + addr[strings.LastIndexByte(addr, ':')+1:],
		"sending b'This is the message. '", "received b'This is the message. '"}
	if len(msgs) < 3 || !slicesEqual(msgs[:3], wantLog) || msgs[len(msgs)-1] != "closing" {
		t.Errorf("log %q; want it to start %q and end with closing", msgs, wantLog)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// fakeUDPServer answers every datagram it reads with what reply returns
// (nothing for nil; several datagrams for several), counting them.
type fakeUDPServer struct {
	pc    net.PacketConn
	mu    sync.Mutex
	count int
}

func newFakeUDPServer(t *testing.T, reply func(n int, p []byte) [][]byte) (*fakeUDPServer, string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUDPServer{pc: pc}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 70000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.count++
			k := f.count
			f.mu.Unlock()
			for _, r := range reply(k, append([]byte(nil), buf[:n]...)) {
				pc.WriteTo(r, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return f, "udp://" + pc.LocalAddr().String()
}

func (f *fakeUDPServer) received() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

func TestSendPacketsRetriesLostDatagrams(t *testing.T) {
	// Drop the first copy of every datagram; echo the second twice, so
	// that a late duplicate arrives while the next one is awaited.
	f, addr := newFakeUDPServer(t, func(n int, p []byte) [][]byte {
		if n%2 == 1 {
			return nil
		}
		return [][]byte{p, p}
	})
	var logs syncBuffer
	var out bytes.Buffer
	c := &echo.Client{Addr: addr, Timeout: 600 * time.Millisecond, Logger: debugLogger(&logs)}
	if _, err := c.SendPackets(t.Context(), seedMessages, &out); err != nil {
		t.Fatalf("SendPackets: %v\n%s", err, logs.String())
	}
	if out.String() != seedEcho {
		t.Errorf("echo %q, want %q", out.String(), seedEcho)
	}
	if f.received() != 6 {
		t.Errorf("server received %d datagrams, want 6 (each sent twice)", f.received())
	}
	retries := 0
	for _, l := range parseLog(t, logs.String()) {
		if l.Level == "warn" {
			retries++
			if !strings.Contains(l.Message, "resending (retry 1 of 2)") {
				t.Errorf("retry line %q", l.Message)
			}
		}
	}
	if retries != 3 {
		t.Errorf("%d retry lines, want 3:\n%s", retries, logs.String())
	}
}

// TestSendPacketsTrace: over UDP, which connects nothing, Connected is not
// called, and Echoed is once every echo is back, with a time that holds
// the server's (send --count's table).
func TestSendPacketsTrace(t *testing.T) {
	const hold = 30 * time.Millisecond
	_, addr := newFakeUDPServer(t, func(_ int, p []byte) [][]byte {
		time.Sleep(hold) // the behaviour under test: a slow server
		return [][]byte{p}
	})
	var connected, echoed []time.Duration
	c := &echo.Client{Addr: addr, Timeout: ioTimeout, Trace: &echo.ClientTrace{
		Connected: func(d time.Duration) { connected = append(connected, d) },
		Echoed:    func(d time.Duration) { echoed = append(echoed, d) },
	}}
	if _, err := c.SendPackets(t.Context(), seedMessages, nil); err != nil {
		t.Fatal(err)
	}
	if len(connected) != 0 || len(echoed) != 1 || echoed[0] < time.Duration(len(seedMessages))*hold {
		t.Errorf("connected %v, echoed %v; want none, and one echo of at least %v", connected, echoed, time.Duration(len(seedMessages))*hold)
	}
}

func TestSendPacketsNoEcho(t *testing.T) {
	for _, tt := range []struct {
		retries  int
		attempts int
	}{{0, 3}, {-1, 1}, {4, 5}} {
		t.Run(strconv.Itoa(tt.retries), func(t *testing.T) {
			f, addr := newFakeUDPServer(t, func(int, []byte) [][]byte { return nil })
			c := &echo.Client{Addr: addr, Timeout: 300 * time.Millisecond, Retries: tt.retries}
			start := time.Now()
			_, err := c.SendPackets(t.Context(), seedMessages, nil)
			var de *echo.DatagramError
			if !errors.As(err, &de) || !errors.Is(err, echo.ErrNoEcho) || de.Datagram != 1 || de.Of != 3 {
				t.Fatalf("SendPackets = %v; want a DatagramError for datagram 1 of 3 wrapping ErrNoEcho", err)
			}
			want := fmt.Sprintf("echo %s: datagram 1 of 3: no echo after %d %s in 300ms", addr, tt.attempts, map[bool]string{true: "attempt", false: "attempts"}[tt.attempts == 1])
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if elapsed := time.Since(start); elapsed < 250*time.Millisecond || elapsed > 3*time.Second {
				t.Errorf("gave up after %v; want about the 300ms timeout", elapsed)
			}
			if f.received() != tt.attempts {
				t.Errorf("server received %d copies, want %d", f.received(), tt.attempts)
			}
		})
	}
}

func TestSendPacketsMismatch(t *testing.T) {
	tests := []struct {
		name  string
		reply func(p []byte) []byte
		want  echo.MismatchError
		msg   string
	}{
		{"changed byte", func(p []byte) []byte {
			if string(p) == "It will be sent " {
				p[3] = 'X'
			}
			return p
		}, echo.MismatchError{Datagram: 2, Offset: 3, Sent: 'w', Received: 'X'},
			"echo of datagram 2 differs from what was sent at byte 3: sent b'w', received b'X'"},
		{"shorter", func(p []byte) []byte {
			if string(p) == "in parts." {
				return p[:4]
			}
			return p
		}, echo.MismatchError{Datagram: 3, Offset: 4, Short: true},
			"echo of datagram 3 differs from what was sent: it is 4 bytes long, shorter than the datagram sent"},
		{"longer", func(p []byte) []byte { return append(p, '!') },
			echo.MismatchError{Datagram: 1, Offset: 21, Received: '!', Extra: true},
			"echo of datagram 1 differs from what was sent at byte 21: received b'!' after the end of what was sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := newFakeUDPServer(t, func(_ int, p []byte) [][]byte { return [][]byte{tt.reply(p)} })
			var out bytes.Buffer
			c := &echo.Client{Addr: addr, Timeout: ioTimeout}
			_, err := c.SendPackets(t.Context(), seedMessages, &out)
			var me *echo.MismatchError
			if !errors.As(err, &me) || *me != tt.want || err.Error() != tt.msg {
				t.Fatalf("SendPackets = %#v (%v); want %+v: %s", err, err, tt.want, tt.msg)
			}
		})
	}
}

func TestSendPacketsRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "udp://" + pc.LocalAddr().String()
	pc.Close()
	c := &echo.Client{Addr: addr, Timeout: ioTimeout}
	_, err = c.SendPackets(t.Context(), seedMessages, nil)
	var de *echo.DialError
	if !errors.As(err, &de) || !errors.Is(err, syscall.ECONNREFUSED) || err.Error() != "connect "+addr+": connection refused" {
		t.Fatalf("SendPackets to a closed port = %v; want connect %s: connection refused", err, addr)
	}
}

// TestSendPacketsTriesEachAddress resolves a name to ::1, where nothing
// listens, then 127.0.0.1, where the server is: the refused first address
// is skipped, as DialContext skips it for TCP.
func TestSendPacketsTriesEachAddress(t *testing.T) {
	requireIPv6(t)
	addr, _ := servePacketLocal(t, &echo.Server{}, "udp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	if pc, err := net.ListenPacket("udp6", "[::1]:"+port); err != nil {
		t.Skipf("[::1]:%s is taken", port)
	} else {
		pc.Close()
	}
	r := &fakeResolver{addrs: map[string][]netip.Addr{"echo.test": {loopback6, loopback4}}}
	var out bytes.Buffer
	c := &echo.Client{Addr: "udp://echo.test:" + port, Timeout: ioTimeout, Resolver: r}
	if _, err := c.SendPackets(t.Context(), seedMessages, &out); err != nil {
		t.Fatalf("SendPackets: %v", err)
	}
	if out.String() != seedEcho {
		t.Errorf("echo %q", out.String())
	}
}

func TestSendPacketsContextCancel(t *testing.T) {
	_, addr := newFakeUDPServer(t, func(int, []byte) [][]byte { return nil })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	c := &echo.Client{Addr: addr} // no Timeout: only the context bounds it
	start := time.Now()
	_, err := c.SendPackets(ctx, seedMessages, nil)
	var xe *echo.ExchangeError
	if !errors.As(err, &xe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendPackets = %v; want an ExchangeError for the context", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v to notice the context", time.Since(start))
	}
}

func TestSendStreamRefusesUDP(t *testing.T) {
	c := &echo.Client{Addr: "udp://127.0.0.1:9"}
	if _, err := c.SendStream(t.Context(), strings.NewReader("x"), nil); err == nil || !strings.Contains(err.Error(), "SendPackets") {
		t.Fatalf("SendStream over UDP = %v; want an error pointing to SendPackets", err)
	}
}

// TestSendPacketsEchoOfAnEarlierMessage: an echo equal to an earlier
// message may be a second echo of it, and is passed over; when nothing
// else comes back, it was the echo of this one, and a wrong one.
func TestSendPacketsEchoOfAnEarlierMessage(t *testing.T) {
	_, addr := newFakeUDPServer(t, func(_ int, p []byte) [][]byte { return [][]byte{bytes.ToUpper(p)} })
	c := &echo.Client{Addr: addr, Timeout: 300 * time.Millisecond, Retries: 1} // waited out in full
	_, err := c.SendPackets(t.Context(), [][]byte{[]byte("ABC"), []byte("abc")}, nil)
	var me *echo.MismatchError
	if !errors.As(err, &me) || me.Datagram != 2 || me.Offset != 0 || me.Received != 'A' {
		t.Fatalf("SendPackets = %v; want a mismatch in datagram 2", err)
	}
}

// TestSendPacketsDuplicateEcho: a second echo of a datagram (the network's
// or a server's fault-duplicate) is no echo of the next: send reads the
// first and goes on.
func TestSendPacketsDuplicateEcho(t *testing.T) {
	_, addr := newFakeUDPServer(t, func(_ int, p []byte) [][]byte { return [][]byte{p, p} })
	c := &echo.Client{Addr: addr, Timeout: ioTimeout}
	msgs := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	var got bytes.Buffer
	res, err := c.SendPackets(t.Context(), msgs, &got)
	if err != nil || got.String() != "onetwothree" || res.Received != 11 {
		t.Fatalf("SendPackets = %+v, %v, echo %q; want every datagram echoed once", res, err, got.String())
	}
}

// TestServePacketAccessList drops the datagrams of a denied sender.
func TestServePacketAccessList(t *testing.T) {
	srv := &echo.Server{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	addr, _ := servePacketLocal(t, srv, "udp", "127.0.0.1:0")
	udpRoundTrip(t, dialUDP(t, addr), []byte("allowed"))
	denied, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("cannot send from 127.0.0.2: %v", err)
	}
	defer denied.Close()
	denied.SetDeadline(time.Now().Add(300 * time.Millisecond))
	denied.Write([]byte("denied"))
	if n, err := denied.Read(make([]byte, 64)); err == nil {
		t.Fatalf("a denied sender got %d bytes back", n)
	}
}

// packetRecorder is a recorder that also counts datagrams.
type packetRecorder struct{ *recorder }

func (r packetRecorder) PacketListener(string) echo.ConnObserver {
	return &connRecorder{r: r.recorder}
}

func TestServePacketObserver(t *testing.T) {
	rec := newRecorder()
	addr, _ := servePacketLocal(t, &echo.Server{Observer: packetRecorder{rec}}, "udp4", "127.0.0.1:0")
	c := dialUDP(t, addr)
	sizes := []int{1, 100, 1472}
	total := 0
	for _, n := range sizes {
		udpRoundTrip(t, c, make([]byte, n))
		total += n
	}
	// The echo has arrived, but the server reports Sent just after writing.
	deadline := time.Now().Add(ioTimeout)
	for rec.sent.Load() < int64(total) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := rec.received.Load(); got != int64(total) {
		t.Errorf("received %d bytes, want %d", got, total)
	}
	if got := rec.sent.Load(); got != int64(total) {
		t.Errorf("sent %d bytes, want %d", got, total)
	}
	if got := rec.chunks.Load(); got != int64(len(sizes)) {
		t.Errorf("%d latencies, want %d", got, len(sizes))
	}
	if rec.accepted.Load() != 0 || rec.totalClosed() != 0 {
		t.Errorf("datagrams counted as connections: accepted %d, closed %d", rec.accepted.Load(), rec.totalClosed())
	}
}

// TestSendPacketsTooLarge: a datagram larger than UDP carries fails with
// the limit of the address's IP version: 65507 bytes over IPv4, 65527
// over IPv6.
func TestSendPacketsTooLarge(t *testing.T) {
	for _, tt := range []struct {
		network, address string
		size             int
		limit            string
	}{
		{"udp4", "127.0.0.1:0", echo.MaxDatagramSize + 1, "at most 65507 over IPv4"},
		{"udp6", "[::1]:0", echo.MaxDatagramSizeIPv6 + 1, "at most 65527 over IPv6"},
		{"udp6", "[::1]:0", 70000, "at most 65527 over IPv6"},
	} {
		t.Run(tt.address+"/"+strconv.Itoa(tt.size), func(t *testing.T) {
			if tt.network == "udp6" {
				requireIPv6(t)
			}
			addr, _ := servePacketLocal(t, &echo.Server{}, tt.network, tt.address)
			c := &echo.Client{Addr: "udp://" + addr, Timeout: ioTimeout}
			_, err := c.SendPackets(t.Context(), [][]byte{make([]byte, tt.size)}, nil)
			want := fmt.Sprintf("echo udp://%s: datagram 1 of 1: %d bytes is more than a UDP datagram carries (%s)", addr, tt.size, tt.limit)
			var de *echo.DatagramError
			if !errors.As(err, &de) || err.Error() != want {
				t.Fatalf("SendPackets = %v; want %s", err, want)
			}
		})
	}
}

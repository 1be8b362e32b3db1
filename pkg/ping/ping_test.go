package ping_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
	"github.com/echoctl/echoctl/pkg/ping"
)

// run pings cfg and returns the summary and every probe told.
func run(t *testing.T, cfg ping.Config) (ping.Summary, []ping.Probe) {
	t.Helper()
	var probes []ping.Probe
	cfg.OnProbe = func(p ping.Probe) { probes = append(probes, p) }
	if cfg.Interval == 0 {
		cfg.Interval = time.Millisecond
	}
	sum, err := ping.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(probes) != sum.Sent {
		t.Fatalf("%d probes told, summary says %d sent", len(probes), sum.Sent)
	}
	return sum, probes
}

func TestPingEchoServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "echo.sock")
	tests := []struct {
		name    string
		addr    func(t *testing.T) string
		connect bool // each probe connects
	}{
		{"tcp", func(t *testing.T) string { return echotest.NewServer(t, nil).Addr }, true},
		{"unix", func(t *testing.T) string { echotest.NewServerOn(t, nil, "unix", sock); return "unix://" + sock }, true},
		{"udp", func(t *testing.T) string { return "udp://" + udpEcho(t, nil) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr(t)
			sum, probes := run(t, ping.Config{Client: &echo.Client{Addr: addr}, Count: 4, Size: 100})
			if sum.Sent != 4 || sum.Received != 4 || sum.Loss != 0 || !sum.OK() {
				t.Fatalf("summary %+v, want 4 sent and received", sum)
			}
			for i, p := range probes {
				if p.Seq != i+1 || !p.OK() || p.RTT <= 0 || p.Peer == "" {
					t.Errorf("probe %d: %+v", i, p)
				}
				if (p.Connect > 0) != tt.connect {
					t.Errorf("probe %d: connect %v, want one only over streams", i, p.Connect)
				}
			}
			if sum.RTT.Count != 4 || sum.RTT.Min > sum.RTT.P50 || sum.RTT.P50 > sum.RTT.Max || sum.RTT.Avg < sum.RTT.Min || sum.RTT.Avg > sum.RTT.Max {
				t.Errorf("rtt stats out of order: %+v", sum.RTT)
			}
		})
	}
}

// countingEcho is a TCP echo server that counts its connections.
func countingEcho(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var accepted atomic.Int32
	addr := tcpServer(t, func(c net.Conn) {
		accepted.Add(1)
		io.Copy(c, c)
	})
	return addr, &accepted
}

func TestPingReuseConnectsOnce(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		addr, accepted := countingEcho(t)
		sum, probes := run(t, ping.Config{Client: &echo.Client{Addr: addr}, Count: 5, Reuse: reuse})
		if !sum.OK() {
			t.Fatalf("reuse %v: %+v", reuse, sum)
		}
		want := int32(5)
		if reuse {
			want = 1
		}
		if got := accepted.Load(); got != want {
			t.Errorf("reuse %v: %d connections for 5 probes, want %d", reuse, got, want)
		}
		if reuse && (probes[0].Connect == 0 || probes[1].Connect != 0) {
			t.Errorf("reuse: connect times %v, %v: want the first only", probes[0].Connect, probes[1].Connect)
		}
	}
}

func TestPingFailures(t *testing.T) {
	closed := tcpServer(t, func(c net.Conn) {
		buf := make([]byte, ping.DefaultSize) // all of it: unread bytes would make the close a reset
		io.ReadFull(c, buf)
		c.Write(buf[:3])
	})
	flipped := tcpServer(t, func(c net.Conn) {
		buf := make([]byte, 64)
		if _, err := io.ReadFull(c, buf); err == nil {
			buf[20] ^= 1
			c.Write(buf)
		}
	})
	silent := tcpServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	refused := unusedPort(t)
	tests := []struct {
		name, addr, kind string
	}{
		{"closed", closed, "closed"},
		{"mismatch", flipped, "mismatch"},
		{"timeout", silent, "timeout"},
		{"refused", refused, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, probes := run(t, ping.Config{Client: &echo.Client{Addr: tt.addr}, Count: 2, Timeout: 200 * time.Millisecond})
			if sum.Sent != 2 || sum.Received != 0 || sum.Loss != 100 || sum.OK() {
				t.Fatalf("summary %+v, want 2 sent, none received", sum)
			}
			if sum.Errors[tt.kind] != 2 {
				t.Errorf("errors %v, want 2 %s", sum.Errors, tt.kind)
			}
			for _, p := range probes {
				if p.Kind != tt.kind || p.Err == nil {
					t.Errorf("probe %d: kind %q (%v), want %q", p.Seq, p.Kind, p.Err, tt.kind)
				}
			}
			if tt.kind == "timeout" && probes[0].Err != nil && time.Since(probes[0].Time) < 200*time.Millisecond {
				t.Errorf("a timeout before the 200ms timeout")
			}
		})
	}
}

// TestPingUDPLossAndLateAnswers: a server that leaves every even probe
// unanswered, and answers each odd one after sending back, first, the
// previous (even) probe's datagram: a late answer that must not count.
func TestPingUDPLossAndLateAnswers(t *testing.T) {
	var last []byte
	addr := udpEcho(t, func(p []byte) [][]byte {
		seq := binary.BigEndian.Uint64(p)
		defer func() { last = append([]byte(nil), p...) }()
		if seq%2 == 0 {
			return nil
		}
		if last != nil {
			return [][]byte{last, p}
		}
		return [][]byte{p}
	})
	sum, probes := run(t, ping.Config{Client: &echo.Client{Addr: "udp://" + addr}, Count: 6, Timeout: 300 * time.Millisecond})
	if sum.Sent != 6 || sum.Received != 3 || sum.Loss != 50 || sum.Errors["timeout"] != 3 {
		t.Fatalf("summary %+v, want 6 sent, 3 received, 3 timeouts", sum)
	}
	if sum.Late != 2 || sum.Duplicates != 0 {
		t.Errorf("summary: %d late, %d duplicates; want the answers to probes 2 and 4 late, no duplicate", sum.Late, sum.Duplicates)
	}
	for _, p := range probes {
		if p.OK() != (p.Seq%2 == 1) {
			t.Errorf("probe %d: ok %v (%v)", p.Seq, p.OK(), p.Err)
		}
		if want := []int{p.Seq - 1}; p.Seq%2 == 1 && p.Seq > 1 && !slices.Equal(p.Late, want) {
			t.Errorf("probe %d: late %v, want %v", p.Seq, p.Late, want)
		}
	}
	if line := ping.ProbeLine(probes[2]); !strings.HasSuffix(line, " late=2") {
		t.Errorf("probe line %q, want it to end late=2", line)
	}
}

// TestPingUDPDuplicates: a server that answers every probe twice. The
// second copy comes before the next probe's answer, which takes it for
// what it is: a duplicate, as ping(8)'s DUP!, not an answer, not a loss.
// The last probe's copy is not waited for.
func TestPingUDPDuplicates(t *testing.T) {
	addr := udpEcho(t, func(p []byte) [][]byte { return [][]byte{p, p} })
	sum, probes := run(t, ping.Config{Client: &echo.Client{Addr: "udp://" + addr}, Count: 4, Timeout: 5 * time.Second})
	if sum.Received != 4 || sum.Duplicates != 3 || sum.Late != 0 || !sum.OK() {
		t.Fatalf("summary %+v, want 4 received, 3 duplicates, none late", sum)
	}
	for _, p := range probes[1:] {
		if want := []int{p.Seq - 1}; !slices.Equal(p.Duplicates, want) {
			t.Errorf("probe %d: duplicates %v, want %v", p.Seq, p.Duplicates, want)
		}
	}
	var text, js strings.Builder
	if err := ping.WriteSummary(&text, sum); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "4 probes sent, 4 received, +3 duplicates, 0% loss") {
		t.Errorf("summary:\n%s\nwant ping's +3 duplicates", text.String())
	}
	if err := ping.WriteSummaryJSON(&js, sum); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"duplicates":3,"late":0`) {
		t.Errorf("summary JSON %s, want duplicates 3 and late 0", js.String())
	}
	js.Reset()
	if err := ping.WriteProbeJSON(&js, probes[1]); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"duplicates":[1]`) {
		t.Errorf("probe JSON %s, want duplicates [1]", js.String())
	}
}

// TestPingDeadline: --deadline ends the run as ping -w does. Without a
// count that is how it ends, and passes; with one that it cuts short, the
// run fails (Cut), and the probe under way then counts as interrupted.
func TestPingDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	silent := udpEcho(t, func([]byte) [][]byte { return nil })
	halfLost := udpEcho(t, func(p []byte) [][]byte {
		if binary.BigEndian.Uint64(p)%2 == 0 {
			return nil
		}
		return [][]byte{p}
	})
	echoing := "udp://" + udpEcho(t, nil)
	tests := []struct {
		name        string
		addr        string
		count       int
		interval    time.Duration
		cut, ok     bool
		interrupted int
	}{
		{"no count: the deadline ends it", echoing, 0, 50 * time.Millisecond, false, true, 0},
		{"before the count", echoing, 1000, 50 * time.Millisecond, true, false, 0},
		{"the count first", echoing, 2, time.Millisecond, false, true, 0},
		{"a probe under way", "udp://" + silent, 1000, time.Millisecond, true, false, 1},
		// As ping -c 3 -w: probes go on until 3 replies; the lost ones
		// fail the run all the same (stricter than ping(8)).
		{"count is replies", "udp://" + halfLost, 3, time.Millisecond, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			timeout := time.Hour
			if tt.addr == "udp://"+halfLost {
				timeout = 20 * time.Millisecond
			}
			sum, err := ping.Run(context.Background(), ping.Config{Client: &echo.Client{Addr: tt.addr}, Count: tt.count,
				Interval: tt.interval, Deadline: deadline, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Cut != tt.cut || sum.OK() != tt.ok || sum.Errors["interrupted"] != tt.interrupted || sum.Sent == 0 {
				t.Fatalf("summary %+v: want cut %v, ok %v, %d interrupted", sum, tt.cut, tt.ok, tt.interrupted)
			}
			if took := time.Since(start); tt.count != 2 && tt.count != 3 && took < deadline {
				t.Errorf("the run took %v, less than its deadline", took)
			}
			if tt.count > 0 && !tt.cut && sum.Received != tt.count {
				t.Errorf("%d replies, want the count, %d", sum.Received, tt.count)
			}
			var text strings.Builder
			ping.WriteSummary(&text, sum)
			if strings.Contains(text.String(), "deadline:") != tt.cut {
				t.Errorf("summary:\n%s\nwant a deadline line: %v", text.String(), tt.cut)
			}
		})
	}
}

// listResolver resolves every name to its addresses.
type listResolver []netip.Addr

func (r listResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return r, nil
}

// TestPingUDPTriesEachAddress: a name whose first address refuses UDP
// (no server there, as ::1 when the server listens on 127.0.0.1 only) is
// probed at its next, as a TCP connect tries each: no probe is lost, and
// the run keeps to the address that answered.
func TestPingUDPTriesEachAddress(t *testing.T) {
	_, port, _ := net.SplitHostPort(udpEcho(t, nil)) // on 127.0.0.1 only
	r := listResolver{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")}
	sum, probes := run(t, ping.Config{Client: &echo.Client{Addr: "udp://localhost:" + port, Resolver: r}, Count: 3, Timeout: time.Second})
	if !sum.OK() || sum.Received != 3 {
		t.Fatalf("summary %+v, want every probe answered", sum)
	}
	for _, p := range probes {
		if p.Peer != "127.0.0.1:"+port {
			t.Errorf("probe %d answered by %s, want 127.0.0.1:%s", p.Seq, p.Peer, port)
		}
	}
}

// countingResolver resolves every name to 127.0.0.1 and counts lookups.
type countingResolver struct{ n atomic.Int32 }

func (r *countingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.n.Add(1)
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

func TestPingResolveEach(t *testing.T) {
	_, port, _ := net.SplitHostPort(echotest.NewServer(t, nil).Addr)
	for _, each := range []bool{false, true} {
		r := &countingResolver{}
		sum, _ := run(t, ping.Config{Client: &echo.Client{Addr: "localhost:" + port, Resolver: r}, Count: 3, ResolveEach: each})
		if !sum.OK() {
			t.Fatalf("%+v", sum)
		}
		want := int32(1)
		if each {
			want = 3
		}
		if got := r.n.Load(); got != want {
			t.Errorf("resolve-each %v: %d lookups for 3 probes, want %d", each, got, want)
		}
	}
}

func TestPingSourceAddress(t *testing.T) {
	var mu sync.Mutex
	var peers []string
	addr := tcpServer(t, func(c net.Conn) {
		mu.Lock()
		peers = append(peers, c.RemoteAddr().(*net.TCPAddr).IP.String())
		mu.Unlock()
		io.Copy(c, c)
	})
	if sum, _ := run(t, ping.Config{Client: &echo.Client{Addr: addr}, Count: 2, Source: netip.MustParseAddr("127.0.0.9")}); !sum.OK() {
		t.Fatalf("%+v", sum)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range peers {
		if p != "127.0.0.9" {
			t.Errorf("the server saw %s, want the source 127.0.0.9", p)
		}
	}
}

func TestPingStopsWithItsContext(t *testing.T) {
	addr := echotest.NewServer(t, nil).Addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Until interrupted (Count 0), an hour apart: the end of ctx, after
	// the first probe, ends the wait for the second.
	sum, err := ping.Run(ctx, ping.Config{Client: &echo.Client{Addr: addr}, Interval: time.Hour, OnProbe: func(ping.Probe) { cancel() }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 1 || sum.Received != 1 {
		t.Fatalf("summary %+v, want the one probe before the interruption", sum)
	}
}

// TestPingCountsAProbeCutShort: a probe that the end of the context cuts
// short (Ctrl-C while it awaits its echo) counts as sent and not
// answered, as ping(8) counts a packet it sent, without a line of its
// own: "0 probes sent" with exit 1 read as a contradiction.
func TestPingCountsAProbeCutShort(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The server reads the probe, then the context ends: it never echoes.
	addr := tcpServer(t, func(c net.Conn) {
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err == nil {
			cancel()
		}
		io.Copy(io.Discard, c)
	})
	told := 0
	sum, err := ping.Run(ctx, ping.Config{Client: &echo.Client{Addr: addr}, Count: 3, OnProbe: func(ping.Probe) { told++ }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 1 || sum.Received != 0 || sum.Loss != 100 || sum.Errors["interrupted"] != 1 || told != 0 || sum.OK() {
		t.Fatalf("summary %+v, told %d; want 1 sent, none received, interrupted, not told", sum, told)
	}
	if sum.Connect.Count != 0 {
		t.Errorf("connect stats %+v: the probe with no line of its own counted", sum.Connect)
	}
}

// TestPingSummaryOK: the exit status. Every probe that ran its course
// answered, and one at least: one that Ctrl-C cut short fails nothing,
// whenever it came.
func TestPingSummaryOK(t *testing.T) {
	cut := map[string]int{"interrupted": 1}
	tests := []struct {
		name string
		sum  ping.Summary
		ok   bool
	}{
		{"all answered", ping.Summary{Sent: 3, Received: 3}, true},
		{"one lost", ping.Summary{Sent: 3, Received: 2, Errors: map[string]int{"timeout": 1}}, false},
		{"last cut short", ping.Summary{Sent: 3, Received: 2, Errors: cut}, true},
		{"only probe cut short", ping.Summary{Sent: 1, Received: 0, Errors: cut}, false},
		{"none sent", ping.Summary{}, false},
	}
	for _, tt := range tests {
		if got := tt.sum.OK(); got != tt.ok {
			t.Errorf("%s: OK() = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// TestPingLargeProbes: a probe larger than the socket's buffers hold is
// read back while it is written; written whole first, 1 MiB over a Unix
// socket stalled until the timeout. A Unix probe's peer is the path
// dialed, not the temporary one the server bound its socket at.
func TestPingLargeProbes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "echo.sock")
	echotest.NewServerOn(t, nil, "unix", sock)
	for _, addr := range []string{"unix://" + sock, echotest.NewServer(t, nil).Addr} {
		sum, probes := run(t, ping.Config{Client: &echo.Client{Addr: addr}, Count: 2, Size: ping.MaxSize, Timeout: 20 * time.Second})
		if !sum.OK() {
			t.Fatalf("%s: summary %+v, probes %+v; want both answered", addr, sum, probes)
		}
		if want := strings.TrimPrefix(addr, "unix://"); addr != want && probes[0].Peer != want {
			t.Errorf("%s: peer %q, want the socket's path", addr, probes[0].Peer)
		}
	}
}

func TestPingConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  ping.Config
	}{
		{"negative count", ping.Config{Count: -1}},
		{"negative interval", ping.Config{Interval: -time.Second}},
		{"negative timeout", ping.Config{Timeout: -time.Second}},
		{"negative deadline", ping.Config{Deadline: -time.Second}},
		{"deadline past the bound", ping.Config{Deadline: 20000 * time.Hour}},
		{"size too small", ping.Config{Size: 15}},
		{"size too large", ping.Config{Size: ping.MaxSize + 1}},
		{"udp datagram too large", ping.Config{Client: &echo.Client{Addr: "udp://127.0.0.1:7"}, Size: 65508}},
		{"reuse on udp", ping.Config{Client: &echo.Client{Addr: "udp://127.0.0.1:7"}, Reuse: true}},
		{"bad address", ping.Config{Client: &echo.Client{Addr: "ftp://x"}}},
		{"source on unix", ping.Config{Client: &echo.Client{Addr: "unix:///tmp/x.sock"}, Source: netip.MustParseAddr("127.0.0.1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ping.Run(context.Background(), tt.cfg)
			var ce *ping.ConfigError
			var ae *echo.AddrError
			if !errors.As(err, &ce) && !errors.As(err, &ae) {
				t.Fatalf("Run = %v, want a *ConfigError or *echo.AddrError", err)
			}
		})
	}
}

// tcpServer serves each connection with handle on 127.0.0.1:0 until the
// test ends.
func tcpServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return ln.Addr().String()
}

// udpEcho answers each datagram on 127.0.0.1:0 with what answer returns
// (nil answer: the datagram itself).
func udpEcho(t *testing.T, answer func([]byte) [][]byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			out := [][]byte{buf[:n]}
			if answer != nil {
				out = answer(buf[:n])
			}
			for _, p := range out {
				pc.WriteTo(p, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// unusedPort returns a 127.0.0.1 address nothing listens on.
func unusedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestPingMismatchSays: a mismatch says where the echo differs, its bytes
// as send writes them, and a datagram of another size says which.
func TestPingMismatchSays(t *testing.T) {
	flipped := tcpServer(t, func(c net.Conn) {
		buf := make([]byte, 64)
		if _, err := io.ReadFull(c, buf); err == nil {
			buf[20] = 0xef
			c.Write(buf)
		}
	})
	trailing := tcpServer(t, func(c net.Conn) {
		buf := make([]byte, 64)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write(append(buf, '\n')) // the echo and a line end, in one write
		}
	})
	longer := udpEcho(t, func(p []byte) [][]byte { return [][]byte{append(p, "MORE"...)} })
	shorter := udpEcho(t, func(p []byte) [][]byte { return [][]byte{p[:len(p)-1]} })
	tiny := udpEcho(t, func(p []byte) [][]byte { return [][]byte{p[:10]} })
	header := udpEcho(t, func(p []byte) [][]byte { p[3] ^= 1; return [][]byte{p} })
	tests := []struct{ name, addr, want string }{
		{"byte", flipped, `^echo differs at byte 20: sent b'.+', got b'\\xef'$`},
		{"bytes after the echo", trailing, `^echo differs: received b'\\n' after the end of the 64-byte probe$`},
		{"longer datagram", "udp://" + longer, "^echo differs: a datagram longer than the 64-byte probe$"},
		{"shorter datagram", "udp://" + shorter, "^echo differs: datagram of 63 bytes, shorter than the 64-byte probe$"},
		{"datagram shorter than a probe's header", "udp://" + tiny, "^echo differs: datagram of 10 bytes, shorter than the 64-byte probe$"},
		{"sequence number changed", "udp://" + header, `^echo differs at byte 3: sent b'\\x00', got b'\\x01'$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probes := run(t, ping.Config{Client: &echo.Client{Addr: tt.addr}, Count: 1, Size: 64, Timeout: 5 * time.Second})
			if len(probes) != 1 || probes[0].Kind != "mismatch" || probes[0].Err == nil || !regexp.MustCompile(tt.want).MatchString(probes[0].Err.Error()) {
				t.Fatalf("probes %+v, want one mismatch that says %q", probes, tt.want)
			}
		})
	}
}

package echo_test

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/echoctl/echoctl/pkg/echo"
)

// Tests of the PROXY protocol stage (proxy.go) on both engines and on
// every stream transport: TCP, Unix sockets and TLS (whose header comes
// before the handshake).

// proxyTarget is one way of serving a PROXY listener.
type proxyTarget struct {
	name string
	// start serves srv (logging to its Logger) with the PROXY protocol on
	// and returns a dialler of raw connections to it.
	start func(t *testing.T, srv *echo.Server) func(t *testing.T) net.Conn
	tls   bool
}

var proxyTargets = []proxyTarget{
	{name: "tcp loops", start: proxyServeTCP(false, false, 0)},
	{name: "tcp goroutines", start: proxyServeTCP(true, false, 0)},
	{name: "tcp opaque", start: proxyServeTCP(false, true, 0)},
	// Data logged, 7 bytes a read: every header comes in pieces.
	{name: "tcp loops BufferSize 7", start: proxyServeTCP(false, false, 7)},
	{name: "tcp goroutines BufferSize 7", start: proxyServeTCP(true, false, 7)},
	{name: "unix loops", start: proxyServeUnix(false)},
	{name: "unix goroutines", start: proxyServeUnix(true)},
	{name: "tls", start: proxyServeTLS, tls: true},
}

// proxyServeTCP serves through Serve, with the PROXY protocol set in
// Server.ListenerOptions.
func proxyServeTCP(goroutines, opaque bool, bufferSize int) func(t *testing.T, srv *echo.Server) func(t *testing.T) net.Conn {
	return func(t *testing.T, srv *echo.Server) func(t *testing.T) net.Conn {
		srv.BufferSize = bufferSize
		if goroutines {
			echo.WithoutLoops(srv)
		}
		srv.ListenerOptions.ProxyProtocol = true
		ln := listenLocal(t)
		serve(t, srv, hideFDs(ln, opaque))
		return func(t *testing.T) net.Conn { return dial(t, ln.Addr().String()) }
	}
}

// proxyServeUnix serves through Bind, with the PROXY protocol set in the
// address's query.
func proxyServeUnix(goroutines bool) func(t *testing.T, srv *echo.Server) func(t *testing.T) net.Conn {
	return func(t *testing.T, srv *echo.Server) func(t *testing.T) net.Conn {
		if goroutines {
			echo.WithoutLoops(srv)
		}
		path := socketPath(t)
		addr := "unix://" + path + "?proxy-protocol=on"
		if d := srv.ListenerOptions.ProxyTimeout; d > 0 {
			addr += "&proxy-timeout=" + d.String()
		}
		serveBound(t, srv, addr)
		return func(t *testing.T) net.Conn {
			c, err := net.DialTimeout("unix", path, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
	}
}

var proxyTLS struct {
	once sync.Once
	fx   tlsFixture
}

func proxyServeTLS(t *testing.T, srv *echo.Server) func(t *testing.T) net.Conn {
	proxyTLS.once.Do(func() { proxyTLS.fx = newTLSFixture(t) })
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{proxyTLS.fx.server.TLS}}
	srv.ListenerOptions.ProxyProtocol = true
	addrs, _ := serveBound(t, srv, "tls://127.0.0.1:0")
	addr := strings.TrimPrefix(addrs[0], "tls://")
	return func(t *testing.T) net.Conn { return dial(t, addr) }
}

// session is the connection the echo goes over once the header is
// written: raw, or TLS over it.
func (pt proxyTarget) session(t *testing.T, raw net.Conn) net.Conn {
	t.Helper()
	if !pt.tls {
		return raw
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: proxyTLS.fx.ca.Pool(), ServerName: "localhost"})
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake after the header: %v", err)
	}
	return tc
}

// proxyHeader formats a PROXY header from src to dst.
func proxyHeader(t *testing.T, version byte, src, dst string, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withCRC32C is the header echo.SendProxy makes with a CRC32C TLV last,
// its checksum computed (with no source and destination, a LOCAL one).
func withCRC32C(t *testing.T, version, src, dst string) []byte {
	t.Helper()
	p, err := echo.ParseSendProxy(version, src, dst, []string{"authority=example.com", "crc32c="})
	if err != nil {
		t.Fatal(err)
	}
	var local, remote net.Addr
	if src == "" {
		local, remote = &net.UnixAddr{Name: "a", Net: "unix"}, &net.UnixAddr{Name: "b", Net: "unix"}
	}
	b, err := p.Header(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localV2 is HAProxy's check-send-proxy health check: a v2 LOCAL header.
func localV2(t *testing.T) []byte {
	t.Helper()
	b, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proxyRecorder counts PROXY headers by version and result
// (echo.ProxyObserver) and connections by close reason.
type proxyRecorder struct {
	mu       sync.Mutex
	accepted int
	headers  map[string]int // "v2 proxy"
	closed   map[echo.CloseReason]int
}

func newProxyRecorder() *proxyRecorder {
	return &proxyRecorder{headers: map[string]int{}, closed: map[echo.CloseReason]int{}}
}

func (r *proxyRecorder) Listening(string, bool)    {}
func (r *proxyRecorder) AcceptError(string, error) {}
func (r *proxyRecorder) ConnAccepted(string, net.Addr) echo.ConnObserver {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted++
	return r
}
func (r *proxyRecorder) Received(int)            {}
func (r *proxyRecorder) Sent(int, time.Duration) {}

func (r *proxyRecorder) Closed(reason echo.CloseReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed[reason]++
}

func (r *proxyRecorder) ProxyHeader(version int, result echo.ProxyResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.headers["v"+string(rune('0'+version))+" "+result.String()]++
}

func (r *proxyRecorder) acceptedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

func (r *proxyRecorder) counts() (map[string]int, map[echo.CloseReason]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, c := map[string]int{}, map[echo.CloseReason]int{}
	for k, v := range r.headers {
		h[k] = v
	}
	for k, v := range r.closed {
		c[k] = v
	}
	return h, c
}

// jsonLines decodes a JSON log transcript into maps, to read any field.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for l := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestProxyHeaderServed: a v1 or v2 header, whole or in pieces, with the
// echo's first bytes in the same write as its end or not, is never
// echoed; the connection is then the original client's in the logs, with
// the balancer as via; LOCAL and UNKNOWN are served as the socket's, with
// no warning; the observer counts each header.
func TestProxyHeaderServed(t *testing.T) {
	const msg = "This is the message. It will be sent in parts."
	cases := []struct {
		name    string
		header  func(t *testing.T) []byte
		split   []int // cut the header at these offsets into several writes
		withMsg bool  // the echo's first bytes in the header's last write
		client  string
		count   string
	}{
		{name: "v1", header: func(t *testing.T) []byte { return proxyHeader(t, 1, "203.0.113.7:41000", "10.0.0.5:9000") }, client: "203.0.113.7:41000", count: "v1 proxy"},
		{name: "v1 in pieces with the echo", header: func(t *testing.T) []byte { return proxyHeader(t, 1, "203.0.113.7:41000", "10.0.0.5:9000") }, split: []int{3, 9, 20}, withMsg: true, client: "203.0.113.7:41000", count: "v1 proxy"},
		{name: "v2 with TLVs and the echo", header: func(t *testing.T) []byte {
			return proxyHeader(t, 2, "[2001:db8::7]:41000", "[2001:db8::5]:9000",
				proxyproto.TLV{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")},
				proxyproto.TLV{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte("h2")})
		}, withMsg: true, client: "[2001:db8::7]:41000", count: "v2 proxy"},
		{name: "v2 in pieces", header: func(t *testing.T) []byte { return proxyHeader(t, 2, "203.0.113.7:41000", "10.0.0.5:9000") }, split: []int{1, 12, 15, 20}, client: "203.0.113.7:41000", count: "v2 proxy"},
		{name: "v2 with a CRC32C checksum", header: func(t *testing.T) []byte {
			return withCRC32C(t, "v2", "203.0.113.7:41000", "10.0.0.5:9000")
		}, withMsg: true, client: "203.0.113.7:41000", count: "v2 proxy"},
		{name: "v2 LOCAL", header: localV2, withMsg: true, count: "v2 local"},
		{name: "v2 LOCAL with a CRC32C checksum", header: func(t *testing.T) []byte { return withCRC32C(t, "v2", "", "") }, withMsg: true, count: "v2 local"},
		{name: "v1 UNKNOWN", header: func(*testing.T) []byte { return []byte("PROXY UNKNOWN\r\n") }, withMsg: true, count: "v1 local"},
		// PROXY of an unspecified protocol: no client, as LOCAL.
		{name: "v2 PROXY UNSPEC", header: func(*testing.T) []byte { return []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x00\x00\x00") }, withMsg: true, count: "v2 local"},
		{name: "v2 PROXY UNSPEC with a TLV", header: func(*testing.T) []byte {
			return []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x00\x00\x0e\x02\x00\x0bexample.com")
		}, withMsg: true, count: "v2 local"},
	}
	for _, pt := range proxyTargets {
		for _, tc := range cases {
			t.Run(pt.name+"/"+tc.name, func(t *testing.T) {
				var logs syncBuffer
				rec := newProxyRecorder()
				srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec}
				dialRaw := pt.start(t, srv)
				raw := dialRaw(t)
				raw.SetDeadline(time.Now().Add(ioTimeout))
				h := tc.header(t)
				var writes [][]byte
				last := 0
				for _, cut := range tc.split {
					writes = append(writes, h[last:cut])
					last = cut
				}
				tail := append([]byte(nil), h[last:]...)
				rest := []byte(msg)
				if tc.withMsg && !pt.tls { // over TLS the echo is inside TLS
					tail, rest = append(tail, msg[:10]...), rest[10:]
				}
				writes = append(writes, tail)
				for _, w := range writes {
					if _, err := raw.Write(w); err != nil {
						t.Fatal(err)
					}
					if len(writes) > 1 {
						time.Sleep(time.Millisecond) // let the pieces arrive apart
					}
				}
				c := pt.session(t, raw)
				if _, err := c.Write(rest); err != nil {
					t.Fatal(err)
				}
				closeWrite(t, c)
				got, err := readAll(c)
				if err != nil || string(got) != msg {
					t.Fatalf("read %q, %v; want the message alone, %q", got, err, msg)
				}
				waitUntil(t, "the connection closed", func() bool { _, c := rec.counts(); return c[echo.CloseEOF] == 1 })
				headers, _ := rec.counts()
				if headers[tc.count] != 1 || len(headers) != 1 {
					t.Errorf("headers counted %v, want %q once", headers, tc.count)
				}
				var closing map[string]any
				for _, l := range jsonLines(t, logs.String()) {
					if l["level"] == "warn" || l["level"] == "error" {
						t.Errorf("unexpected %s line: %v", l["level"], l)
					}
					if l["message"] == "closing" {
						closing = l
					}
				}
				if closing == nil {
					t.Fatalf("no closing line in\n%s", logs.String())
				}
				if tc.client == "" {
					if _, ok := closing["via"]; ok {
						t.Errorf("closing line %v has a via field after %s", closing, tc.name)
					}
					return
				}
				ap := netip.MustParseAddrPort(tc.client)
				wantName := "echo_" + ap.Addr().String() + "_41000"
				if closing["logger"] != wantName || closing["peer"] != tc.client {
					t.Errorf("closing line %v: want logger %s and peer %s", closing, wantName, tc.client)
				}
				if via, _ := closing["via"].(string); via == "" || strings.Contains(via, "203.0.113.7") {
					t.Errorf("closing line %v: want the balancer (the socket's peer) as via", closing)
				}
				if strings.HasPrefix(tc.name, "v2 with TLVs") && !strings.Contains(logs.String(), `"tlv_authority":"example.com"`) {
					t.Errorf("no authority TLV logged at debug:\n%s", logs.String())
				}
			})
		}
	}
}

// TestProxyHeaderRefused: a header that is absent, malformed, ends in a
// bare LF, is unsupported, late, or cut short by the peer's end of stream
// closes the connection with nothing echoed, one warn line and its result
// counted.
func TestProxyHeaderRefused(t *testing.T) {
	badCommand := proxyHeader(t, 2, "203.0.113.7:41000", "10.0.0.5:9000")
	badCommand[12] = 0x23 // version 2, command 3
	v2 := proxyHeader(t, 2, "203.0.113.7:41000", "10.0.0.5:9000")
	badSum := withCRC32C(t, "v2", "203.0.113.7:41000", "10.0.0.5:9000")
	badSum[len(badSum)-1] ^= 1
	badLocalSum := withCRC32C(t, "v2", "", "")
	badLocalSum[len(badLocalSum)-4] ^= 0x80
	// TLVs that do not fill the header: the last runs past its end, or
	// bytes too few for a TLV are left after it.
	withTLVBytes := func(tlvs ...byte) []byte {
		b := append(proxyHeader(t, 2, "203.0.113.7:41000", "10.0.0.5:9000"), tlvs...)
		binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
		return b
	}
	overrun := withTLVBytes(0x02, 0, 2, 'o', 'k', 0x02, 0xff, 0xff)
	stray := withTLVBytes(0x02, 0, 2, 'o', 'k', 0x04)
	// The same over UDP4 and UNIX, which go-proxyproto parses.
	udpOverrun := bytes.Clone(overrun)
	udpOverrun[13] = 0x12
	unixOverrun := append([]byte(nil), overrun[:16]...)
	unixOverrun[13] = 0x31
	unixOverrun = append(unixOverrun, make([]byte, 216)...)
	copy(unixOverrun[16:], "/src")
	copy(unixOverrun[16+108:], "/dst")
	unixOverrun = append(unixOverrun, overrun[28:]...)
	binary.BigEndian.PutUint16(unixOverrun[14:16], uint16(len(unixOverrun)-16))
	cases := []struct {
		name      string
		send      []byte
		halfClose bool          // the peer ends its stream after send
		idle      time.Duration // Server.IdleTimeout
		result    string
		warn      string
	}{
		{"absent", []byte("hello, echo\n"), false, 0, "v0 absent", "no PROXY protocol header"},
		{"TLV past the end", append(overrun, "hello"...), false, 0, "v2 malformed", "TLV type 0x02 of 65535 bytes runs 65535 bytes past its end"},
		{"bytes after the TLVs", append(stray, "hello"...), false, 0, "v2 malformed", "1 of its bytes after its last TLV"},
		{"UDP4 TLV past the end", append(udpOverrun, "hello"...), false, 0, "v2 malformed", "runs 65535 bytes past its end"},
		{"UNIX TLV past the end", append(unixOverrun, "hello"...), false, 0, "v2 malformed", "runs 65535 bytes past its end"},
		{"bare LF", []byte("PROXY TCP4 203.0.113.7 10.0.0.5 41000 9000\nhello"), false, 0, "v1 malformed", "bare LF"},
		{"malformed v1", []byte("PROXY TCP4 203.0.113.999 10.0.0.5 41000 9000\r\nhello"), false, 0, "v1 malformed", "malformed PROXY protocol header"},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 120)), false, 0, "v1 malformed", "no CRLF within 107 bytes"},
		{"unknown command", badCommand, false, 0, "v2 unsupported", "unsupported"},
		{"wrong CRC32C", badSum, false, 0, "v2 malformed", "its CRC32C checksum is"},
		{"wrong CRC32C, LOCAL", badLocalSum, false, 0, "v2 malformed", "its CRC32C checksum is"},
		{"CRC32C of 2 bytes", proxyHeader(t, 2, "203.0.113.7:41000", "10.0.0.5:9000", proxyproto.TLV{Type: proxyproto.PP2_TYPE_CRC32C, Value: []byte{1, 2}}), false, 0, "v2 malformed", "CRC32C TLV holds 2 bytes"},
		{"late", []byte("PROXY TCP4 203.0.113.7"), false, 0, "v1 timeout", "no whole PROXY protocol header within"},
		// The header's bound, not the idle timeout, rules while it is read.
		{"late, idle timeout shorter", nil, false, 50 * time.Millisecond, "v0 timeout", "no whole PROXY protocol header within"},
		{"v1 cut short", []byte("PROXY TCP4 203.0.113.7 10.0.0.5 41000 9000"), true, 0, "v1 malformed", "incomplete PROXY protocol header: the connection ended after 42 bytes of it (EOF)"},
		{"v2 cut short", v2[:20], true, 0, "v2 malformed", "incomplete PROXY protocol header: the connection ended after 20 bytes of it (EOF)"},
		{"signature cut short", v2[:5], true, 0, "v0 malformed", "incomplete PROXY protocol header: the connection ended after 5 bytes of it"},
	}
	for _, pt := range proxyTargets {
		for _, tc := range cases {
			t.Run(pt.name+"/"+tc.name, func(t *testing.T) {
				var logs syncBuffer
				rec := newProxyRecorder()
				srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec}
				srv.ListenerOptions.ProxyTimeout = 300 * time.Millisecond
				srv.IdleTimeout = tc.idle
				c := pt.start(t, srv)(t)
				if _, err := c.Write(tc.send); err != nil {
					t.Fatal(err)
				}
				if tc.halfClose {
					if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
						t.Fatal(err)
					}
				}
				got, err := readAll(c)
				if len(got) != 0 || errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read %q, %v; want closed with nothing echoed", got, err)
				}
				waitUntil(t, "the connection closed", func() bool { _, c := rec.counts(); return c[echo.CloseProxy] == 1 })
				if headers, _ := rec.counts(); headers[tc.result] != 1 || len(headers) != 1 {
					t.Errorf("headers counted %v, want %q once", headers, tc.result)
				}
				var warns []string
				for _, l := range jsonLines(t, logs.String()) {
					if l["level"] == "warn" {
						warns = append(warns, l["message"].(string))
					}
				}
				if len(warns) != 1 || !strings.Contains(warns[0], tc.warn) {
					t.Errorf("warnings %q, want one that says %q", warns, tc.warn)
				}
				if strings.Contains(logs.String(), `received b'`) {
					t.Errorf("the header was logged as data:\n%s", logs.String())
				}
			})
		}
	}
}

// TestProxyWarningsRateLimited: a burst of refused connections on one
// listener logs one warning for a reason, not one each; all are counted,
// in the metrics and in the log: the ones held back in a line of their
// own at the end of the second, or when the server shuts down first.
func TestProxyWarningsRateLimited(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shutdown bool
	}{{name: "second ends"}, {name: "shutdown", shutdown: true}} {
		for _, pt := range proxyTargets[:2] { // both engines
			t.Run(tc.name+"/"+pt.name, func(t *testing.T) {
				testProxyWarningsRateLimited(t, pt, tc.shutdown)
			})
		}
	}
}

func testProxyWarningsRateLimited(t *testing.T, pt proxyTarget, shutdown bool) {
	var logs syncBuffer
	rec := newProxyRecorder()
	srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec}
	dialRaw := pt.start(t, srv)
	const n = 5
	for range n {
		c := dialRaw(t)
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		readAll(c)
	}
	waitUntil(t, "every connection closed", func() bool { _, c := rec.counts(); return c[echo.CloseProxy] == n })
	if h, _ := rec.counts(); h["v0 absent"] != n {
		t.Errorf("counted %v, want %d absent", h, n)
	}
	const report = "more connections refused for a PROXY header (absent) since the last report"
	if shutdown {
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), report) {
			t.Fatalf("the held-back refusals were not reported when Shutdown returned:\n%s", logs.String())
		}
	}
	waitUntil(t, "the held-back refusals reported", func() bool { return strings.Contains(logs.String(), report) })
	// The burst takes far less than the second between two
	// warnings (a slow machine may see two); every refusal is
	// a warning or in the count of one.
	warned, counted := 0, 0
	for line := range strings.Lines(logs.String()) {
		var ev struct {
			Level    string
			Message  string
			Unlogged int `json:"refused_unlogged"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Level != "warn" {
			continue
		}
		if !strings.Contains(ev.Message, report) {
			warned++
		}
		counted += ev.Unlogged
	}
	if warned < 1 || warned > 2 || warned+counted != n {
		t.Errorf("%d warnings counting %d more for %d refusals, want 1 (or 2 across a second) counting the rest:\n%s", warned, counted, n, logs.String())
	}
}

// TestProxyTrusted: with ProxyTrusted set, a peer outside it is refused
// at once, even with a valid header; a peer inside it must send one.
func TestProxyTrusted(t *testing.T) {
	for _, pt := range proxyTargets {
		if strings.HasPrefix(pt.name, "unix") {
			continue // Unix peers have no address: always trusted
		}
		t.Run(pt.name, func(t *testing.T) {
			for _, trusted := range []string{"10.0.0.0/8", "127.0.0.0/8"} {
				var logs syncBuffer
				rec := newProxyRecorder()
				srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec}
				srv.ListenerOptions.ProxyTrusted = []netip.Prefix{netip.MustParsePrefix(trusted)}
				raw := pt.start(t, srv)(t)
				raw.SetDeadline(time.Now().Add(ioTimeout))
				raw.Write(proxyHeader(t, 2, "203.0.113.7:41000", "10.0.0.5:9000"))
				if trusted == "10.0.0.0/8" {
					if got, _ := readAll(raw); len(got) != 0 {
						t.Errorf("an untrusted peer read %q", got)
					}
					waitUntil(t, "refused", func() bool { _, c := rec.counts(); return c[echo.CloseProxy] == 1 })
					if h, _ := rec.counts(); h["v0 untrusted"] != 1 {
						t.Errorf("counted %v, want one untrusted", h)
					}
					if w := strings.Count(logs.String(), `"level":"warn"`); w != 1 || !strings.Contains(logs.String(), "not a trusted PROXY protocol sender") {
						t.Errorf("want one warning of an untrusted peer:\n%s", logs.String())
					}
					continue
				}
				c := pt.session(t, raw)
				roundTrip(t, c, []byte("trusted"))
			}
		})
	}
}

// TestProxyAccessListAppliesToClient: the access list and the per-IP
// limit apply to the client a header names, not to the balancer.
func TestProxyAccessListAppliesToClient(t *testing.T) {
	for _, pt := range proxyTargets {
		if pt.tls {
			continue // the same code runs once the header is read
		}
		t.Run(pt.name, func(t *testing.T) {
			var logs syncBuffer
			rec := newProxyRecorder()
			srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec, MaxConnsPerIP: 1}
			// The balancer, 127.0.0.1, is not allowed: its clients are.
			srv.Allow = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}
			srv.Deny = []netip.Prefix{netip.MustParsePrefix("203.0.113.66/32")}
			dialRaw := pt.start(t, srv)

			allowed := dialRaw(t)
			allowed.Write(proxyHeader(t, 1, "198.51.100.1:5000", "10.0.0.5:9000"))
			roundTrip(t, allowed, []byte("allowed"))
			// Another client through the same balancer: its own per-IP count.
			other := dialRaw(t)
			other.Write(proxyHeader(t, 2, "203.0.113.7:5000", "10.0.0.5:9000"))
			roundTrip(t, other, []byte("other"))
			// The same client again: over its limit of one.
			again := dialRaw(t)
			again.Write(proxyHeader(t, 2, "198.51.100.1:5001", "10.0.0.5:9000"))
			if got, _ := readAll(again); len(got) != 0 {
				t.Errorf("a client over its per-IP limit read %q", got)
			}
			denied := dialRaw(t)
			denied.Write(append(proxyHeader(t, 1, "203.0.113.66:5000", "10.0.0.5:9000"), "x"...))
			if got, _ := readAll(denied); len(got) != 0 {
				t.Errorf("a denied client read %q", got)
			}
			// A client named by a Unix socket's path has no IP address:
			// the rules apply to the balancer, which is not allowed (on a
			// Unix socket, it has no address either: served). Its path
			// names it in the log, escaped.
			balancerHasIP := !strings.HasPrefix(pt.name, "unix")
			unixClient := dialRaw(t)
			unixClient.Write(unixV2(t, "/run/a\nFAKE forged line", "/run/b"))
			if balancerHasIP {
				if got, _ := readAll(unixClient); len(got) != 0 {
					t.Errorf("a client named by a Unix path, through a balancer that is not allowed, read %q", got)
				}
			} else {
				roundTrip(t, unixClient, []byte("unix"))
				unixClient.Close()
			}
			wantDenied := 1
			if balancerHasIP {
				wantDenied = 2
			}
			waitUntil(t, "refused", func() bool {
				_, c := rec.counts()
				return c[echo.CloseLimit] == 1 && c[echo.CloseDenied] == wantDenied
			})
			if !strings.Contains(logs.String(), `"logger":"echo_203.0.113.66_5000"`) || !strings.Contains(logs.String(), "address not allowed") {
				t.Errorf("the denied client is not named in the log:\n%s", logs.String())
			}
			// The limit's warning names the client, and the balancer as via.
			if !regexp.MustCompile(`"level":"warn","logger":"main","peer":"198\.51\.100\.1:5001","via":"[^"]+",.*per-IP`).MatchString(logs.String()) {
				t.Errorf("the per-IP limit's warning does not name the client and the balancer:\n%s", logs.String())
			}
			// Refused once the header named them: no accept line.
			for _, l := range parseLog(t, logs.String()) {
				if (l.Logger == "echo_203.0.113.66_5000" || l.Logger == "echo_198.51.100.1_5001") && strings.HasPrefix(l.Message, "connection accepted") {
					t.Errorf("%s, refused, was logged as accepted: %q", l.Logger, l.Message)
				}
			}
			if !strings.Contains(logs.String(), `"logger":"echo_/run/a\\x0aFAKE forged line"`) {
				t.Errorf("the Unix client is not named in the log, its newline escaped:\n%s", logs.String())
			}
			allowed.Close()
			other.Close()
		})
	}
}

// unixV2 returns a v2 PROXY header naming a Unix socket client.
func unixV2(t *testing.T, src, dst string) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UnixStream,
		SourceAddr: &net.UnixAddr{Name: src, Net: "unix"}, DestinationAddr: &net.UnixAddr{Name: dst, Net: "unix"}}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProxyEmptyConnection: a peer that connects and ends its stream
// without a byte (a balancer's plain TCP health check) is no refused
// header: it closes as any connection at end of stream, with no warning.
func TestProxyEmptyConnection(t *testing.T) {
	for _, pt := range proxyTargets {
		t.Run(pt.name, func(t *testing.T) {
			var logs syncBuffer
			rec := newProxyRecorder()
			srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec}
			c := pt.start(t, srv)(t)
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got, err := readAll(c); len(got) != 0 || err != nil {
				t.Fatalf("read %q, %v; want the end of stream", got, err)
			}
			waitUntil(t, "the connection closed", func() bool { _, c := rec.counts(); return len(c) > 0 })
			if h, c := rec.counts(); len(h) != 0 || c[echo.CloseEOF] != 1 {
				t.Errorf("headers %v, closes %v; want no header counted and one close at end of stream", h, c)
			}
			if strings.Contains(logs.String(), `"level":"warn"`) {
				t.Errorf("a warning for an empty connection:\n%s", logs.String())
			}
		})
	}
}

// TestProxyOnlyWhereAsked: a Server with several addresses reads headers
// only on those whose query asks for it.
func TestProxyOnlyWhereAsked(t *testing.T) {
	srv := &echo.Server{}
	addrs, _ := serveBound(t, srv, "tcp://127.0.0.1:0?proxy-protocol=on", "127.0.0.1:0")
	plain := dial(t, addrs[1])
	roundTrip(t, plain, []byte("PROXY is data here\r\n"))
	proxied := dial(t, strings.TrimPrefix(addrs[0], "tcp://"))
	proxied.Write(proxyHeader(t, 1, "203.0.113.7:41000", "10.0.0.5:9000"))
	roundTrip(t, proxied, []byte("after the header"))
}

// TestProxyShutdownWhileWaiting: Shutdown ends a connection still
// waiting for its header, as a shutdown, not as a refused header.
func TestProxyShutdownWhileWaiting(t *testing.T) {
	for _, pt := range proxyTargets {
		t.Run(pt.name, func(t *testing.T) {
			var logs syncBuffer
			rec := newProxyRecorder()
			srv := &echo.Server{Logger: debugLogger(&logs), Observer: rec}
			c := pt.start(t, srv)(t)
			c.Write([]byte("PROX"))
			waitUntil(t, "accepted", func() bool { return rec.acceptedCount() == 1 })
			go shutdown(srv, 50*time.Millisecond)
			if got, _ := readAll(c); len(got) != 0 {
				t.Errorf("read %q", got)
			}
			waitUntil(t, "closed", func() bool { _, c := rec.counts(); return c[echo.CloseShutdown] == 1 })
			if h, _ := rec.counts(); len(h) != 0 || strings.Contains(logs.String(), `"level":"warn"`) {
				t.Errorf("headers counted %v; want none, and no warning:\n%s", h, logs.String())
			}
		})
	}
}

// TestProxyHeaderBytesNotEchoedUnderLoad: many connections, each with its
// header and echo in one write, on both engines; the echo is byte-exact.
func TestProxyManyConnections(t *testing.T) {
	for _, pt := range proxyTargets[:2] {
		t.Run(pt.name, func(t *testing.T) {
			srv := &echo.Server{}
			dialRaw := pt.start(t, srv)
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					c := dialRaw(t)
					c.SetDeadline(time.Now().Add(ioTimeout))
					payload := randomBytes(uint64(i), 3000)
					c.Write(append(proxyHeader(t, byte(1+i%2), "203.0.113.7:41000", "10.0.0.5:9000"), payload...))
					closeWrite(t, c)
					got, err := io.ReadAll(c)
					if err != nil || !bytes.Equal(got, payload) {
						t.Errorf("connection %d: %d bytes back, %v", i, len(got), err)
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestProxyBoundByHand: a Bound filled by hand is served with the
// Server's ListenerOptions.
func TestProxyBoundByHand(t *testing.T) {
	srv := &echo.Server{ListenerOptions: echo.ListenerOptions{ProxyProtocol: true}}
	ln := listenLocal(t)
	done := make(chan error, 1)
	go func() { done <- srv.ServeBound(&echo.Bound{Listeners: []net.Listener{ln}}) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	c := dial(t, ln.Addr().String())
	c.Write(localV2(t))
	roundTrip(t, c, []byte("PROXY is data after the header"))
}

// TestProxyHealthCheckReset: a balancer's health check, a LOCAL header
// and then a reset (as HAProxy ends its checks), is served without a
// warning, on every transport (over TLS the reset comes in the
// handshake).
func TestProxyHealthCheckReset(t *testing.T) {
	checks := []struct {
		name   string
		header func(t *testing.T, c net.Conn) []byte
		read   string // in the debug line that says the header was read
	}{
		{"v2 LOCAL", func(t *testing.T, _ net.Conn) []byte { return localV2(t) }, "PROXY header: v2 LOCAL"},
		{"v1 UNKNOWN", func(*testing.T, net.Conn) []byte { return []byte("PROXY UNKNOWN\r\n") }, "PROXY header: v1 UNKNOWN"},
		// HAProxy's v1 check-send-proxy: the check's own addresses.
		{"v1 from the balancer itself", func(t *testing.T, c net.Conn) []byte {
			return proxyHeader(t, 1, c.LocalAddr().String(), c.RemoteAddr().String())
		}, "PROXY header: v1 PROXY"},
	}
	for _, pt := range proxyTargets {
		for _, hc := range checks {
			t.Run(pt.name+"/"+hc.name, func(t *testing.T) {
				testHealthCheckReset(t, pt, hc.header, hc.read)
			})
		}
	}
}

func testHealthCheckReset(t *testing.T, pt proxyTarget, header func(*testing.T, net.Conn) []byte, read string) {
	logs := &watchedLog{}
	rec := newProxyRecorder()
	srv := &echo.Server{Logger: debugLogger(logs), Observer: rec}
	c := pt.start(t, srv)(t)
	if _, isUnix := c.(*net.UnixConn); isUnix && strings.Contains(read, "v1 PROXY") {
		t.Skip("a Unix socket's peer has no address to send as the source")
	}
	if _, err := c.Write(header(t, c)); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, "the header read", func(log string) bool { return strings.Contains(log, read) })
	switch rc := c.(type) {
	case *net.TCPConn:
		rc.SetLinger(0)
	case *net.UnixConn:
		// A Unix socket has no reset: its close is an end of stream.
	}
	c.Close()
	waitUntil(t, "closed", func() bool { _, c := rec.counts(); return c[echo.CloseReset]+c[echo.CloseEOF]+c[echo.CloseError] == 1 })
	if strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("a health check warned:\n%s", logs.String())
	}
}

// TestProxyGreeting: the greeting of a PROXY listener comes after the
// header, and its {peer}, {via} and {proxy} are what the header said.
func TestProxyGreeting(t *testing.T) {
	for _, pt := range proxyTargets {
		t.Run(pt.name, func(t *testing.T) {
			srv := &echo.Server{Greeting: "peer={peer} via={via} proxy={proxy}"}
			raw := pt.start(t, srv)(t)
			raw.SetDeadline(time.Now().Add(ioTimeout))
			raw.Write(proxyHeader(t, 1, "203.0.113.7:41000", "10.0.0.5:9000"))
			via := raw.LocalAddr().String()
			_, unix := raw.(*net.UnixConn)
			c := pt.session(t, raw)
			c.Write([]byte("hello"))
			closeWrite(t, c)
			got, err := readAll(c)
			want := "peer=203.0.113.7:41000 via=" + via + " proxy=v1 PROXY TCP4 203.0.113.7:41000 -> 10.0.0.5:9000\nhello"
			if unix { // a Unix connection is named by the socket's path
				want = string(got)
				if !regexp.MustCompile(`^peer=203\.0\.113\.7:41000 via=/\S+/e\.sock proxy=v1 PROXY TCP4 203\.0\.113\.7:41000 -> 10\.0\.0\.5:9000\nhello$`).Match(got) {
					want = "peer=203.0.113.7:41000 via=/.../e.sock proxy=..."
				}
			}
			if err != nil || string(got) != want {
				t.Fatalf("read %q, %v; want %q", got, err, want)
			}
		})
	}
}

// TestProxyOneAcceptLine: a connection on a PROXY listener is logged as
// accepted once, after its header, under the client's name with the
// balancer as via: the log lines of any other connection, not one more.
// A connection refused for its header has no accept line.
func TestProxyOneAcceptLine(t *testing.T) {
	for _, pt := range proxyTargets {
		t.Run(pt.name, func(t *testing.T) {
			logs := &watchedLog{}
			srv := &echo.Server{Logger: debugLogger(logs)}
			dialRaw := pt.start(t, srv)
			c := dialRaw(t)
			c.SetDeadline(time.Now().Add(ioTimeout))
			c.Write(proxyHeader(t, 1, "203.0.113.7:41000", "10.0.0.5:9000"))
			closeWrite(t, pt.session(t, c))
			readAll(c)
			logs.wait(t, "the client's closing line", func(log string) bool {
				return strings.Contains(log, `"logger":"echo_203.0.113.7_41000"`) && strings.Contains(log, `"message":"closing"`)
			})
			refused := dialRaw(t)
			refused.Write([]byte("no header\r\n"))
			// The server may have closed it already: no error to check.
			refused.(interface{ CloseWrite() error }).CloseWrite()
			readAll(refused)
			logs.wait(t, "the refused connection's closing line", func(log string) bool {
				return strings.Contains(log, `"reason":"proxy"`) && strings.Contains(log, `"message":"closing"`)
			})
			accepted := regexp.MustCompile(`"message":"connection accepted[^"]*"`).FindAllString(logs.String(), -1)
			if len(accepted) != 1 || !strings.Contains(logs.String(), `"logger":"echo_203.0.113.7_41000","peer":"203.0.113.7:41000","via":`) ||
				!strings.Contains(accepted[0], "connection accepted via ") {
				t.Errorf("accept lines %q, want one, the client's, naming the balancer:\n%s", accepted, logs.String())
			}
		})
	}
}

// TestProxyTLSAcceptLineAfterHandshake: on a TLS listener the PROXY
// header comes before the handshake, and the connection is logged as
// accepted once the handshake has passed, as any TLS connection: one whose
// handshake fails logs only that (at most once a second), not an accept
// line that no closing line follows.
func TestProxyTLSAcceptLineAfterHandshake(t *testing.T) {
	logs := &watchedLog{}
	srv := &echo.Server{Logger: debugLogger(logs)}
	c := proxyServeTLS(t, srv)(t)
	c.SetDeadline(time.Now().Add(ioTimeout))
	c.Write(proxyHeader(t, 2, "203.0.113.7:41000", "10.0.0.5:9000"))
	c.Write([]byte("not a TLS handshake\r\n"))
	readAll(c)
	logs.wait(t, "the failed handshake", func(log string) bool {
		return strings.Contains(log, "TLS handshake failed")
	})
	if strings.Contains(logs.String(), "connection accepted") {
		t.Errorf("a connection whose handshake failed was logged as accepted:\n%s", logs.String())
	}
}

// TestProxyUnixClientWithoutPath: a header naming a Unix client with no
// path (unnamed, or an abstract socket's, which the header's parser reads
// as none) is numbered as this server's own Unix peers are; every such
// connection was "echo_".
func TestProxyUnixClientWithoutPath(t *testing.T) {
	var logs syncBuffer
	srv := &echo.Server{Logger: debugLogger(&logs)}
	addrs, _ := serveBound(t, srv, "tcp://127.0.0.1:0?proxy-protocol=on")
	addr := strings.TrimPrefix(addrs[0], "tcp://")
	for _, src := range []string{"", "\x00abstract"} {
		c := dial(t, addr)
		c.Write(unixV2(t, src, "/run/echo.sock"))
		roundTrip(t, c, []byte("after the header"))
		c.Close()
	}
	if err := shutdown(srv, ioTimeout); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"logger":"echo_unix_1"`, `"logger":"echo_unix_2"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the log:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), `"logger":"echo_"`) {
		t.Errorf("a connection named echo_:\n%s", logs.String())
	}
}

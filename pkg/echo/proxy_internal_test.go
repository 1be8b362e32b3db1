package echo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// TestProxyFrame: the framing finds a header's end exactly, asks for more
// while it is short, and refuses what cannot start a header.
func TestProxyFrame(t *testing.T) {
	v2 := proxyV2Seed(t)
	cases := []struct {
		name    string
		in      string
		n, ver  int
		wantErr error
	}{
		{"empty", "", 0, 0, nil},
		{"v1 signature start", "PRO", 0, 0, nil},
		{"v1 partial", "PROXY TCP4 1.2.3.4", 0, 1, nil},
		{"v1 whole with echo", "PROXY UNKNOWN\r\nhello", 15, 1, nil},
		{"v1 bare LF", "PROXY UNKNOWN\nhello", 0, 1, errProxyBareLF},
		{"v1 no CRLF in 107", "PROXY " + string(bytes.Repeat([]byte("x"), 101)), 0, 1, errProxyV1Long},
		{"v2 prefix only", string(v2[:15]), 0, 0, nil},
		{"v2 partial body", string(v2[:20]), 0, 2, nil},
		{"v2 whole with echo", string(v2) + "hello", len(v2), 2, nil},
		{"v2 over 4 KiB", string(v2[:14]) + "\x10\x01", 0, 2, errProxyV2Long},
		{"absent", "GET / HTTP/1.1\r\n", 0, 0, errProxyAbsent},
		{"absent after P", "POST", 0, 0, errProxyAbsent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, ver, err := proxyFrame([]byte(tc.in))
			if n != tc.n || ver != tc.ver || err != tc.wantErr {
				t.Errorf("proxyFrame = %d, %d, %v; want %d, %d, %v", n, ver, err, tc.n, tc.ver, tc.wantErr)
			}
		})
	}
}

func proxyV2Seed(t testing.TB) []byte {
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort("203.0.113.7:41000")), net.TCPAddrFromAddrPort(netip.MustParseAddrPort("10.0.0.5:9000")))
	h.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")}})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzProxyFrame: whatever the bytes, the framing never takes more than
// the bytes it was given nor more than a header may hold, says the same
// of every shorter prefix of a whole header (more is needed), and
// parsing the header it frames does not panic; a header fed in two
// pieces to the opener leaves the same bytes for the echo.
func FuzzProxyFrame(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 10.0.0.5 41000 9000\r\nhello"), 3)
	f.Add([]byte("PROXY UNKNOWN\r\n"), 1)
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 2\n"), 7)
	f.Add(append(proxyV2Seed(f), "echo"...), 13)
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), 16)
	f.Add([]byte("GET /"), 0)
	unix := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UnixStream,
		SourceAddr: &net.UnixAddr{Name: "/a\nb", Net: "unix"}, DestinationAddr: &net.UnixAddr{Name: "/c\x1b", Net: "unix"}}
	if b, err := unix.Format(); err == nil {
		f.Add(b, 20)
	}
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		n, ver, err := proxyFrame(b)
		if err != nil {
			return
		}
		if n > len(b) || n > proxyV2PrefixLen+proxyV2MaxBody || (ver == 1 && n > proxyV1MaxLen) {
			t.Fatalf("framed %d bytes of %d (version %d)", n, len(b), ver)
		}
		if n == 0 {
			return
		}
		for k := range n {
			if m, _, perr := proxyFrame(b[:k]); m != 0 || perr != nil {
				t.Fatalf("prefix of %d bytes of a %d-byte header: %d, %v", k, n, m, perr)
			}
		}
		parseProxyHeader(b[:n])

		// The opener, fed b in two pieces, takes the header and no more.
		cut = min(max(cut, 0), len(b))
		r := &proxyReader{c: &conn{srv: &Server{}, connGuard: connGuard{lconf: &listenerConf{}}}}
		run := &stageRun{openers: []opener{r}}
		rest1, err1 := run.take(b[:cut])
		rest2, err2 := run.take(b[cut:])
		if err1 != nil || err2 != nil {
			return // a header the parser refuses
		}
		if got := append(append([]byte(nil), rest1...), rest2...); !bytes.Equal(got, b[n:]) {
			t.Fatalf("left %q for the echo, want %q", got, b[n:])
		}
		// What the header named goes in log lines: one line each.
		for _, s := range []string{r.c.name, r.c.peer, r.c.via(), r.c.proxySummary()} {
			if strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
				t.Fatalf("header %q: a control character in %q", b[:n], s)
			}
		}
	})
}

// TestProxyCutShort: an opener cut short by the peer's end of stream
// says why only after some of a header came.
func TestProxyCutShort(t *testing.T) {
	for _, sent := range []string{"", "P", "PROXY TCP4 1.2.3.4", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00"} {
		r := &proxyReader{c: &conn{srv: &Server{}, connGuard: connGuard{lconf: &listenerConf{}}}}
		run := &stageRun{openers: []opener{r}}
		if _, err := run.take([]byte(sent)); err != nil {
			t.Fatalf("%q: %v", sent, err)
		}
		err := run.cutShort(io.EOF)
		var pe *proxyError
		switch {
		case sent == "" && err != nil:
			t.Errorf("nothing sent: %v, want nil (an end of stream as any other)", err)
		case sent != "" && (!errors.As(err, &pe) || pe.result != ProxyMalformed):
			t.Errorf("%q sent: %v, want a malformed header", sent, err)
		}
		if err := run.cutShort(os.ErrDeadlineExceeded); !errors.As(err, &pe) || pe.result != ProxyTimeout {
			t.Errorf("%q sent, then the bound passed: %v, want a timeout", sent, err)
		}
	}
}

// TestProxiedSummary: the one-line summary of a header, with its TLVs
// parsed (ALPN, authority, AWS VPC endpoint, SSL and its sub-fields), and
// what a connection without a header says.
func TestProxiedSummary(t *testing.T) {
	ssl, err := tlvparse.PP2SSL{Client: tlvparse.PP2_BITFIELD_CLIENT_SSL | tlvparse.PP2_BITFIELD_CLIENT_CERT_CONN, TLV: []proxyproto.TLV{
		{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte("TLSv1.3")},
		{Type: proxyproto.PP2_SUBTYPE_SSL_CN, Value: []byte("client.example")},
		{Type: proxyproto.PP2_SUBTYPE_SSL_CIPHER, Value: []byte("TLS_AES_128_GCM_SHA256")},
	}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	src, dst := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("203.0.113.7:41000")), net.TCPAddrFromAddrPort(netip.MustParseAddrPort("10.0.0.5:9000"))
	withTLVs := proxyproto.HeaderProxyFromAddrs(2, src, dst)
	withTLVs.SetTLVs([]proxyproto.TLV{
		{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte("h2")},
		{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")},
		{Type: tlvparse.PP2_TYPE_AWS, Value: append([]byte{tlvparse.PP2_SUBTYPE_AWS_VPCE_ID}, "vpce-0123abcd"...)},
		ssl,
	})
	// An SSL TLV that says the client used TLS and gives no version, and
	// an AWS TLV with a VPC endpoint subtype and no ID.
	malformedTLVs := proxyproto.HeaderProxyFromAddrs(2, src, dst)
	malformedTLVs.SetTLVs([]proxyproto.TLV{
		{Type: proxyproto.PP2_TYPE_SSL, Value: []byte{tlvparse.PP2_BITFIELD_CLIENT_SSL, 0, 0, 0, 0}},
		{Type: tlvparse.PP2_TYPE_AWS, Value: []byte{tlvparse.PP2_SUBTYPE_AWS_VPCE_ID, 0xff}},
	})
	// An SSL TLV too short for its fields, an AWS TLV with its subtype
	// and nothing after, one with no subtype, and one of another subtype
	// (not shown: it tells nothing of the client).
	shortTLVs := proxyproto.HeaderProxyFromAddrs(2, src, dst)
	shortTLVs.SetTLVs([]proxyproto.TLV{
		{Type: proxyproto.PP2_TYPE_SSL, Value: []byte{1, 2, 3}},
		{Type: tlvparse.PP2_TYPE_AWS, Value: []byte{tlvparse.PP2_SUBTYPE_AWS_VPCE_ID}},
		{Type: tlvparse.PP2_TYPE_AWS, Value: []byte{}},
		{Type: tlvparse.PP2_TYPE_AWS, Value: []byte{0x02, 'x'}},
	})
	cases := []struct {
		h    *proxyproto.Header
		want string
	}{
		{proxyproto.HeaderProxyFromAddrs(1, src, dst), "v1 PROXY TCP4 203.0.113.7:41000 -> 10.0.0.5:9000"},
		{withTLVs, "v2 PROXY TCP4 203.0.113.7:41000 -> 10.0.0.5:9000 alpn=h2 authority=example.com aws_vpce=vpce-0123abcd ssl=TLSv1.3 ssl_cn=client.example ssl_cipher=TLS_AES_128_GCM_SHA256 ssl_verified=true"},
		{&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}, "v2 LOCAL"},
		{&proxyproto.Header{Version: 1, Command: proxyproto.LOCAL}, "v1 UNKNOWN"},
		{malformedTLVs, "v2 PROXY TCP4 203.0.113.7:41000 -> 10.0.0.5:9000 ssl=malformed aws_vpce=malformed"},
		{shortTLVs, "v2 PROXY TCP4 203.0.113.7:41000 -> 10.0.0.5:9000 ssl=malformed aws_vpce=malformed aws_vpce=malformed"},
	}
	for _, tc := range cases {
		h := headerFrom(tc.h)
		c := &conn{proxy: &proxied{header: h, via: "10.0.0.2:5000"}}
		if got := c.proxySummary(); got != tc.want {
			t.Errorf("summary %q, want %q", got, tc.want)
		}
	}
	var plain conn
	if plain.via() != "" || plain.proxySummary() != "none" {
		t.Errorf("without a header: via %q, summary %q; want empty and none", plain.via(), plain.proxySummary())
	}
}

// FuzzParseProxyHeader checks the PROXY stage's own reading of the common
// headers (parseProxyTCP) against go-proxyproto's: whatever it reads, the
// library reads the same (version, command, family, addresses, TLVs), and
// whatever the library refuses, it leaves to the library.
func FuzzParseProxyHeader(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.7 10.0.0.5 41000 9000\r\n",
		"PROXY TCP6 2001:db8::7 ::1 41000 9000\r\n",
		"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP6 fe80::1%lo ::1 1 2\r\n",
		"PROXY UNKNOWN\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Add(proxyV2Seed(f))
	for _, addrs := range [][2]string{{"[2001:db8::7]:41000", "[::1]:9000"}, {"[::ffff:1.2.3.4]:1", "[::1]:2"}} {
		h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addrs[0])), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addrs[1])))
		b, err := h.Format()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0b0123456789a"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _, err := proxyFrame(b)
		if err != nil || n == 0 {
			return
		}
		b = b[:n]
		_, _ = parseProxyHeader(b) // with its CRC32C check: no panic
		own, ok := parseProxyTCP(b)
		lh, lerr := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(b), max(len(b), 16)))
		if !ok {
			return
		}
		if lerr != nil {
			t.Fatalf("%q: read as %+v, go-proxyproto refuses it: %v", b, own, lerr)
		}
		if got, want := string(own.appendSummary(nil)), lhSummary(lh); got != want {
			t.Fatalf("%q: summary %q, want %q", b, got, want)
		}
		lib := headerFrom(lh)
		ownTLVs, oerr := own.TLVs()
		libTLVs, _ := lib.TLVs()
		if oerr != nil {
			ownTLVs = nil // go-proxyproto's TLVs fail alike; headerFrom keeps none
		}
		own.tlvs, lib.tlvs = nil, nil
		if !reflect.DeepEqual(own, lib) || len(ownTLVs) != len(libTLVs) {
			t.Fatalf("%q:\n own %+v (%d TLVs)\n lib %+v (%d TLVs)", b, own, len(ownTLVs), lib, len(libTLVs))
		}
		for i := range ownTLVs {
			if ownTLVs[i].Type != libTLVs[i].Type || !bytes.Equal(ownTLVs[i].Value, libTLVs[i].Value) {
				t.Fatalf("%q: TLV %d: own %v, lib %v", b, i, ownTLVs[i], libTLVs[i])
			}
		}
	})
}

// lhSummary is the address part of a summary, made from go-proxyproto's
// net.Addrs as net writes them.
func lhSummary(lh *proxyproto.Header) string {
	s := fmt.Sprintf("v%d PROXY %s %s -> %s", lh.Version, familyName(lh.TransportProtocol), lh.SourceAddr, lh.DestinationAddr)
	h := headerFrom(lh)
	for _, f := range proxyTLVFields(&h) {
		s += " " + f[0] + "=" + f[1]
	}
	return s
}

// TestSendProxyMaxLen: the length Validate counts for a header is the
// length of the header formatted with IPv6 addresses, the longest (v1: at
// most the longest line).
func TestSendProxyMaxLen(t *testing.T) {
	v6 := netip.MustParseAddrPort("[2001:db8::1]:65535")
	for _, tt := range []struct {
		name string
		p    SendProxy
	}{
		{"v1", SendProxy{Version: 1}},
		{"v2", SendProxy{Version: 2}},
		{"v2 with TLVs", SendProxy{Version: 2, TLVs: []proxyproto.TLV{
			{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte("h2")},
			{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")},
			{Type: proxyproto.PP2_TYPE_NOOP},
		}}},
		{"v2 with an empty crc32c", SendProxy{Version: 2, TLVs: []proxyproto.TLV{{Type: proxyproto.PP2_TYPE_CRC32C}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := net.TCPAddrFromAddrPort(v6)
			b, err := tt.p.Header(addr, addr)
			if err != nil {
				t.Fatal(err)
			}
			if n := tt.p.maxLen(); len(b) > n || (tt.p.Version == 2 && len(b) != n) {
				t.Errorf("maxLen %d for a %d-byte header with IPv6 addresses", n, len(b))
			}
		})
	}
}

// FuzzAppendProxyV2TCP: the v2 header a Client formats itself for a TCP
// connection is the one go-proxyproto formats, byte for byte, whatever
// the two addresses (IPv4, IPv6, IPv4-mapped, one of each) and ports.
func FuzzAppendProxyV2TCP(f *testing.F) {
	v4 := func(a ...byte) []byte { return a }
	f.Add(v4(203, 0, 113, 7), uint16(41000), v4(10, 0, 0, 5), uint16(9000))
	f.Add(netip.MustParseAddr("2001:db8::1").AsSlice(), uint16(1), netip.MustParseAddr("::1").AsSlice(), uint16(65535))
	f.Add(netip.MustParseAddr("::ffff:127.0.0.1").AsSlice(), uint16(5000), v4(127, 0, 0, 1), uint16(10000))
	f.Add(v4(127, 0, 0, 1), uint16(0), netip.MustParseAddr("fe80::1").AsSlice(), uint16(80))
	f.Fuzz(func(t *testing.T, srcIP []byte, srcPort uint16, dstIP []byte, dstPort uint16) {
		s, ok1 := netip.AddrFromSlice(srcIP)
		d, ok2 := netip.AddrFromSlice(dstIP)
		if !ok1 || !ok2 {
			return
		}
		src, dst := netip.AddrPortFrom(s, srcPort), netip.AddrPortFrom(d, dstPort)
		h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv6,
			SourceAddr: net.TCPAddrFromAddrPort(src), DestinationAddr: net.TCPAddrFromAddrPort(dst)}
		if s.Unmap().Is4() && d.Unmap().Is4() {
			h.TransportProtocol = proxyproto.TCPv4
		}
		want, err := h.Format()
		if err != nil {
			t.Fatalf("go-proxyproto: %v", err)
		}
		if got := appendProxyV2TCP(nil, src, dst); !bytes.Equal(got, want) {
			t.Errorf("%v -> %v:\n got %x\nwant %x", src, dst, got, want)
		}
	})
}

// TestPeerText: a field a PROXY header carries is shown on one line and
// bounded, whatever its sender put in it.
func TestPeerText(t *testing.T) {
	long := strings.Repeat("a", headerFieldMax+10)
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"", ""},
		{"a\nFAKE: line\x1b[31m\x7f", `a\x0aFAKE: line\x1b[31m\x7f`},
		{"tab\there", `tab\x09here`},
		{long, long[:headerFieldMax] + "... (10 more bytes)"},
		{"\n" + long, `\x0a` + long[:headerFieldMax-1] + "... (11 more bytes)"},
		// Cut where a character starts, never inside one.
		{long[:headerFieldMax-1] + "é", long[:headerFieldMax-1] + "... (2 more bytes)"},
		{"héllo", "héllo"},
	}
	for _, tt := range tests {
		if got := peerText(tt.in); got != tt.want {
			t.Errorf("peerText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

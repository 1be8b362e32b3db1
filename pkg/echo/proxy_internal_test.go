package echo

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
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
		proxyproto.Read(bufio.NewReader(bytes.NewReader(b[:n])))

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
	})
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
	cases := []struct {
		h    *proxyproto.Header
		want string
	}{
		{proxyproto.HeaderProxyFromAddrs(1, src, dst), "v1 PROXY TCP4 203.0.113.7:41000 -> 10.0.0.5:9000"},
		{withTLVs, "v2 PROXY TCP4 203.0.113.7:41000 -> 10.0.0.5:9000 alpn=h2 authority=example.com aws_vpce=vpce-0123abcd ssl=TLSv1.3 ssl_cn=client.example ssl_cipher=TLS_AES_128_GCM_SHA256 ssl_verified=true"},
		{&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}, "v2 LOCAL"},
		{&proxyproto.Header{Version: 1, Command: proxyproto.LOCAL}, "v1 UNKNOWN"},
	}
	for _, tc := range cases {
		c := &conn{proxy: &proxied{header: tc.h, via: "10.0.0.2:5000"}}
		if got := c.proxySummary(); got != tc.want {
			t.Errorf("summary %q, want %q", got, tc.want)
		}
	}
	var plain conn
	if plain.via() != "" || plain.proxySummary() != "none" {
		t.Errorf("without a header: via %q, summary %q; want empty and none", plain.via(), plain.proxySummary())
	}
}

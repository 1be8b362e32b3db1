package echo_test

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pires/go-proxyproto"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/internal/proxytest"
	"github.com/echoctl/echoctl/pkg/echo"
)

func mustSendProxy(t *testing.T, version, source, dest string, tlvs ...string) *echo.SendProxy {
	t.Helper()
	p, err := echo.ParseSendProxy(version, source, dest, tlvs)
	if err != nil {
		t.Fatalf("ParseSendProxy(%q, %q, %q, %q): %v", version, source, dest, tlvs, err)
	}
	return p
}

// TestClientSendsProxyHeader checks the exact header a Client writes, as
// a receiver parses it, over TCP, TLS (the header before the handshake)
// and a Unix socket, and that the echo after it is verified as usual.
func TestClientSendsProxyHeader(t *testing.T) {
	ca := certtest.NewCA(t, "proxy test CA")
	leaf := ca.Issue(t, certtest.Options{CommonName: "backend", Hosts: []string{"127.0.0.1"}})
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}

	type want struct {
		command   proxyproto.ProtocolVersionAndCommand
		transport proxyproto.AddressFamilyAndProtocol
		src, dst  string // "" for the connection's own addresses
		tlvs      []proxyproto.TLV
	}
	tests := []struct {
		name  string
		opts  proxytest.Options
		proxy *echo.SendProxy
		want  want
	}{
		{"v1 own addresses", proxytest.Options{}, mustSendProxy(t, "v1", "", ""),
			want{command: proxyproto.PROXY, transport: proxyproto.TCPv4}},
		{"v1 forged source", proxytest.Options{}, mustSendProxy(t, "v1", "203.0.113.7:41000", ""),
			want{command: proxyproto.PROXY, transport: proxyproto.TCPv4, src: "203.0.113.7:41000"}},
		{"v1 IPv6 both", proxytest.Options{}, mustSendProxy(t, "v1", "[2001:db8::7]:41000", "[2001:db8::1]:443"),
			want{command: proxyproto.PROXY, transport: proxyproto.TCPv6, src: "[2001:db8::7]:41000", dst: "[2001:db8::1]:443"}},
		{"v2 forged both with TLVs", proxytest.Options{},
			mustSendProxy(t, "v2", "203.0.113.7:41000", "198.51.100.1:443", "authority=example.com", "alpn=h2", "0xE1=0x0102ff", "aws-vpce=vpce-0123"),
			want{command: proxyproto.PROXY, transport: proxyproto.TCPv4, src: "203.0.113.7:41000", dst: "198.51.100.1:443", tlvs: []proxyproto.TLV{
				{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")},
				{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte("h2")},
				{Type: 0xE1, Value: []byte{1, 2, 0xff}},
				{Type: 0xEA, Value: []byte("\x01vpce-0123")},
			}}},
		{"v2 IPv6 source, own IPv4 destination mapped", proxytest.Options{}, mustSendProxy(t, "v2", "[2001:db8::7]:41000", ""),
			want{command: proxyproto.PROXY, transport: proxyproto.TCPv6, src: "[2001:db8::7]:41000"}},
		{"v2 over TLS", proxytest.Options{TLS: serverTLS}, mustSendProxy(t, "v2", "203.0.113.7:41000", "", "unique-id=abc"),
			want{command: proxyproto.PROXY, transport: proxyproto.TCPv4, src: "203.0.113.7:41000",
				tlvs: []proxyproto.TLV{{Type: proxyproto.PP2_TYPE_UNIQUE_ID, Value: []byte("abc")}}}},
		{"v1 over TLS", proxytest.Options{TLS: serverTLS}, mustSendProxy(t, "v1", "", ""),
			want{command: proxyproto.PROXY, transport: proxyproto.TCPv4}},
		{"v1 over Unix: UNKNOWN", proxytest.Options{Unix: true}, mustSendProxy(t, "v1", "", ""),
			want{command: proxyproto.LOCAL, transport: proxyproto.UNSPEC}},
		{"v2 over Unix: LOCAL", proxytest.Options{Unix: true}, mustSendProxy(t, "v2", "", "", "authority=sock"),
			want{command: proxyproto.LOCAL, transport: proxyproto.UNSPEC,
				tlvs: []proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("sock")}}}},
		{"v2 over Unix with both addresses", proxytest.Options{Unix: true}, mustSendProxy(t, "v2", "203.0.113.7:41000", "198.51.100.1:80"),
			want{command: proxyproto.PROXY, transport: proxyproto.TCPv4, src: "203.0.113.7:41000", dst: "198.51.100.1:80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Proxy = true
			srv := proxytest.NewServer(t, tt.opts)
			c := &echo.Client{Addr: srv.Addr, Timeout: ioTimeout, Proxy: tt.proxy}
			if tt.opts.TLS != nil {
				c.TLSConfig = &tls.Config{RootCAs: ca.Pool()}
			}
			var out bytes.Buffer
			if _, err := c.Send(t.Context(), seedMessages, &out); err != nil || out.String() != seedEcho {
				t.Fatalf("Send = %q, %v; want %q", out.String(), err, seedEcho)
			}
			h := srv.Header(t)
			if h.Version != byte(tt.proxy.Version) || h.Command != tt.want.command || h.TransportProtocol != tt.want.transport {
				t.Fatalf("header v%d command %#x transport %#x, want v%d %#x %#x", h.Version, h.Command, h.TransportProtocol,
					tt.proxy.Version, tt.want.command, tt.want.transport)
			}
			if tt.want.command == proxyproto.PROXY {
				src, dst := tt.want.src, tt.want.dst
				if src == "" || dst == "" {
					// The connection's own addresses: the server's view of them.
					if src == "" {
						src = "127.0.0.1:" // the port is the client's, unknown here
					}
					if dst == "" {
						dst = srv.Listener.Addr().String()
					}
				}
				gotSrc, gotDst := h.SourceAddr.String(), h.DestinationAddr.String()
				if !strings.HasPrefix(gotSrc, src) || gotDst != dst {
					t.Errorf("header addresses %s -> %s, want %s -> %s", gotSrc, gotDst, src, dst)
				}
			}
			tlvs, err := h.TLVs()
			if err != nil {
				t.Fatal(err)
			}
			if len(tlvs) != len(tt.want.tlvs) {
				t.Fatalf("TLVs %v, want %v", tlvs, tt.want.tlvs)
			}
			for i := range tlvs {
				if tlvs[i].Type != tt.want.tlvs[i].Type || !bytes.Equal(tlvs[i].Value, tt.want.tlvs[i].Value) {
					t.Errorf("TLV %d = %#x %q, want %#x %q", i, tlvs[i].Type, tlvs[i].Value, tt.want.tlvs[i].Type, tt.want.tlvs[i].Value)
				}
			}
		})
	}
}

func TestSendProxyHeaderExactBytes(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 41000}
	remote := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 10000}
	unix := &net.UnixAddr{Net: "unix", Name: "/tmp/echo.sock"}
	sig := string(proxyproto.SIGV2)
	tests := []struct {
		name          string
		proxy         *echo.SendProxy
		local, remote net.Addr
		want          string
	}{
		{"v1 own", mustSendProxy(t, "v1", "", ""), local, remote, "PROXY TCP4 127.0.0.1 127.0.0.1 41000 10000\r\n"},
		{"v1 forged", mustSendProxy(t, "v1", "203.0.113.7:5", "198.51.100.1:6"), local, remote, "PROXY TCP4 203.0.113.7 198.51.100.1 5 6\r\n"},
		{"v1 IPv6 source, own IPv4 destination", mustSendProxy(t, "v1", "[2001:db8::7]:5", ""), local, remote, "PROXY TCP6 2001:db8::7 ::ffff:127.0.0.1 5 10000\r\n"},
		{"v1 unix", mustSendProxy(t, "v1", "", ""), unix, unix, "PROXY UNKNOWN\r\n"},
		{"v2 unix", mustSendProxy(t, "v2", "", ""), unix, unix, sig + "\x20\x00\x00\x00"},
		{"v2 own", mustSendProxy(t, "v2", "", ""), local, remote,
			sig + "\x21\x11\x00\x0c" + "\x7f\x00\x00\x01\x7f\x00\x00\x01" + "\xa0\x28\x27\x10"},
		{"v2 TLV", mustSendProxy(t, "v2", "", "", "0x02=ab"), local, remote,
			sig + "\x21\x11\x00\x11" + "\x7f\x00\x00\x01\x7f\x00\x00\x01" + "\xa0\x28\x27\x10" + "\x02\x00\x02ab"},
		{"v2 decimal TLV type, empty value", mustSendProxy(t, "v2", "", "", "010="), local, remote,
			sig + "\x21\x11\x00\x0f" + "\x7f\x00\x00\x01\x7f\x00\x00\x01" + "\xa0\x28\x27\x10" + "\x0a\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.proxy.Header(tt.local, tt.remote)
			if err != nil || string(got) != tt.want {
				t.Fatalf("Header = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestSendProxyCRC32C checks an empty crc32c TLV gets the checksum the
// spec defines: CRC32c over the header with the value zeroed.
func TestSendProxyCRC32C(t *testing.T) {
	p := mustSendProxy(t, "v2", "203.0.113.7:41000", "198.51.100.1:443", "crc32c=", "authority=x")
	b, err := p.Header(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The crc32c TLV follows the 16-byte fixed part and 12 address bytes.
	const at = 16 + 12
	if b[at] != 0x03 || binary.BigEndian.Uint16(b[at+1:]) != 4 {
		t.Fatalf("no 4-byte crc32c TLV at %d: % x", at, b)
	}
	got := binary.BigEndian.Uint32(b[at+3:])
	zeroed := bytes.Clone(b)
	copy(zeroed[at+3:at+7], []byte{0, 0, 0, 0})
	if want := crc32.Checksum(zeroed, crc32.MakeTable(crc32.Castagnoli)); got != want || got == 0 {
		t.Errorf("crc32c = %#x, want %#x", got, want)
	}
}

func TestParseSendProxyErrors(t *testing.T) {
	tests := []struct {
		name                     string
		version, source, dest    string
		tlvs                     []string
		field, value, reasonPart string
	}{
		{"bad version", "v3", "", "", nil, "protocol", "v3", "must be v1 or v2"},
		{"source without version", "", "1.2.3.4:5", "", nil, "source", "1.2.3.4:5", "needs a PROXY protocol version"},
		{"tlv without version", "", "", "", []string{"alpn=h2"}, "tlv", "alpn=h2", "needs a PROXY protocol version"},
		{"v1 with a TLV", "v1", "", "", []string{"alpn=h2"}, "tlv", "alpn=h2", "v1 has no TLVs"},
		{"source not IP:PORT", "v2", "example.com:80", "", nil, "source", "example.com:80", "must be IP:PORT"},
		{"source without port", "v2", "1.2.3.4", "", nil, "source", "1.2.3.4", "must be IP:PORT"},
		{"dest port too big", "v2", "", "1.2.3.4:70000", nil, "dest", "1.2.3.4:70000", "must be IP:PORT"},
		{"families differ", "v2", "1.2.3.4:5", "[::1]:6", nil, "dest", "[::1]:6", "is IPv6 and the source 1.2.3.4:5 is IPv4"},
		{"unknown TLV name", "v2", "", "", []string{"colour=blue"}, "tlv", "colour=blue", "type must be a number from 0x01 to 0xFF or one of alpn,"},
		{"TLV type 0", "v2", "", "", []string{"0=x"}, "tlv", "0=x", "type must be a number"},
		{"TLV type too big", "v2", "", "", []string{"0x100=x"}, "tlv", "0x100=x", "type must be a number"},
		{"TLV type not decimal", "v2", "", "", []string{"0o7=x"}, "tlv", "0o7=x", "type must be a number"},
		{"TLV without =", "v2", "", "", []string{"alpn"}, "tlv", "alpn", "must be TYPE=VALUE"},
		{"TLV bad hex", "v2", "", "", []string{"alpn=0xzz"}, "tlv", "alpn=0xzz", "bytes in hex"},
		{"crc32c of 3 bytes", "v2", "", "", []string{"crc32c=abc"}, "tlv", "crc32c=abc", "4 bytes"}, // as written
		{"TLV too long", "v2", "", "", []string{"0xE0=" + strings.Repeat("x", 70000)}, "tlv", "0xe0=...", "at most 65535"},
		{"TLVs too long together", "v2", "", "", []string{"0xE0=" + strings.Repeat("x", 40000), "0xE1=" + strings.Repeat("x", 40000)}, "tlv", "2 TLVs", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := echo.ParseSendProxy(tt.version, tt.source, tt.dest, tt.tlvs)
			var pe *echo.SendProxyError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseSendProxy = %+v, %v; want a *SendProxyError", p, err)
			}
			if pe.Field != tt.field || pe.Value != tt.value || !strings.Contains(pe.Reason, tt.reasonPart) {
				t.Errorf("error %+v, want field %q value %q reason containing %q", pe, tt.field, tt.value, tt.reasonPart)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
		})
	}
	if p, err := echo.ParseSendProxy("", "", "", nil); p != nil || err != nil {
		t.Errorf("ParseSendProxy of nothing = %v, %v; want nil, nil", p, err)
	}
}

func TestClientRefusesProxyWhereItCannot(t *testing.T) {
	tests := []struct {
		name   string
		client echo.Client
		want   string
	}{
		{"udp", echo.Client{Addr: "udp://127.0.0.1:7", Proxy: &echo.SendProxy{Version: 2}}, "needs a stream address"},
		{"unix with a source only", echo.Client{Addr: "unix:///nonexistent.sock",
			Proxy: &echo.SendProxy{Version: 2, Source: netip.MustParseAddrPort("1.2.3.4:5")}}, "give both source and dest, or neither"},
		{"invalid", echo.Client{Addr: "127.0.0.1:7", Proxy: &echo.SendProxy{Version: 3}}, "must be v1 or v2"},
		{"greeting over udp", echo.Client{Addr: "udp://127.0.0.1:7", Greeting: true}, "a greeting needs a stream address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Send(t.Context(), seedMessages, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Send: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

package echo

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pires/go-proxyproto"
	"github.com/rs/zerolog"
)

// SendProxy is the PROXY protocol header (HAProxy's doc/proxy-protocol.txt)
// that a Client, or a bench run, writes first on each connection, as a
// load balancer with send-proxy or send-proxy-v2 does: on a tls://
// connection before the TLS handshake, as send-proxy-v2-ssl does. It lets
// a backend that expects PROXY headers be tested without a balancer in
// front. The zero value is not a header: Validate refuses it.
type SendProxy struct {
	// Version is 1 (text) or 2 (binary).
	Version int

	// Source and Dest are the addresses the header announces: the
	// original client and the address it connected to. A zero one is the
	// connection's own: its local address for Source, its remote for
	// Dest. Both given must be of one family; when only one is given and
	// the connection's address is of the other family, the IPv4 one is
	// written as an IPv4-mapped IPv6 address. Over a Unix socket, which
	// has no IP addresses, the header is v1's UNKNOWN or v2's LOCAL unless
	// both are given.
	Source, Dest netip.AddrPort

	// TLVs are v2's type-length-value fields, written in order after the
	// addresses; v1 has none. A PP2_TYPE_CRC32C (0x03) TLV with an empty
	// value gets the header's checksum, computed as the spec says.
	TLVs []proxyproto.TLV
}

// SendProxyError says which setting of a SendProxy is wrong, and what it
// must be. Its names are those of echoctl's flags without the "proxy-"
// prefix: protocol, source, dest, tlv.
type SendProxyError struct {
	// Field is "protocol", "source", "dest" or "tlv".
	Field string
	// Value is the value as given, or as the field holds it.
	Value string
	// Reason says what it must be.
	Reason string
}

// Error returns "echo: PROXY FIELD "VALUE": REASON".
func (e *SendProxyError) Error() string {
	return fmt.Sprintf("echo: PROXY %s %q: %s", e.Field, e.Value, e.Reason)
}

// maxProxyHeader bounds the header Validate accepts: the v2 length field
// is 16 bits. (go-proxyproto's receivers take 4 KiB by default.)
const maxProxyHeader = 16 + 0xFFFF

// awsSubtypeVPCEndpointID is the first byte of the value of an AWS TLV
// (0xEA) that holds a VPC endpoint id.
const awsSubtypeVPCEndpointID = 0x01

// proxyTLVName is a TLV type ParseSendProxyTLV knows by name.
type proxyTLVName struct {
	name string
	typ  proxyproto.PP2Type
}

// proxyTLVNames are the TLV types ParseSendProxyTLV knows by name.
var proxyTLVNames = []proxyTLVName{
	{"alpn", proxyproto.PP2_TYPE_ALPN},
	{"authority", proxyproto.PP2_TYPE_AUTHORITY},
	{"crc32c", proxyproto.PP2_TYPE_CRC32C},
	{"noop", proxyproto.PP2_TYPE_NOOP},
	{"unique-id", proxyproto.PP2_TYPE_UNIQUE_ID},
	{"netns", proxyproto.PP2_TYPE_NETNS},
	{"aws-vpce", 0xEA},
}

// ProxyTLVNames lists the names ParseSendProxyTLV accepts for a type.
func ProxyTLVNames() []string {
	names := make([]string, len(proxyTLVNames))
	for i, n := range proxyTLVNames {
		names[i] = n.name
	}
	return names
}

// ParseSendProxy builds and validates a SendProxy from text, as echoctl's
// flags give it: version "v1", "v2" (or "1", "2"), or "" for no header,
// when it returns nil and no error (and refuses the other settings);
// source and dest "IP:PORT" or "" for the connection's own; tlvs each
// "TYPE=VALUE" (see ParseSendProxyTLV). The error is a *SendProxyError.
func ParseSendProxy(version, source, dest string, tlvs []string) (*SendProxy, error) {
	if version == "" {
		for _, f := range []struct{ field, value string }{{"source", source}, {"dest", dest}, {"tlv", strings.Join(tlvs, " ")}} {
			if f.value != "" {
				return nil, &SendProxyError{Field: f.field, Value: f.value, Reason: "needs a PROXY protocol version, v1 or v2"}
			}
		}
		return nil, nil
	}
	p := &SendProxy{}
	switch strings.TrimSpace(version) { // case-sensitive, as every value
	case "v1", "1":
		p.Version = 1
	case "v2", "2":
		p.Version = 2
	default:
		return nil, &SendProxyError{Field: "protocol", Value: version, Reason: "must be v1 or v2"}
	}
	var err error
	if p.Source, err = parseProxyAddr("source", source); err != nil {
		return nil, err
	}
	if p.Dest, err = parseProxyAddr("dest", dest); err != nil {
		return nil, err
	}
	if p.Version == 1 && len(tlvs) > 0 {
		return nil, &SendProxyError{Field: "tlv", Value: tlvs[0], Reason: "needs PROXY protocol v2: v1 has no TLVs"}
	}
	for _, s := range tlvs {
		tlv, err := ParseSendProxyTLV(s)
		if err != nil {
			return nil, err
		}
		p.TLVs = append(p.TLVs, tlv)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseProxyAddr parses "IP:PORT", or "" as the zero AddrPort.
func parseProxyAddr(field, s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
	if err != nil || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, &SendProxyError{Field: field, Value: s, Reason: "must be IP:PORT, such as 203.0.113.7:41000 or [2001:db8::7]:41000"}
	}
	return ap, nil
}

// ParseSendProxyTLV parses "TYPE=VALUE": TYPE is a number from 0x01 to
// 0xFF (decimal or 0x hex) or one of ProxyTLVNames (alpn 0x01, authority
// 0x02, crc32c 0x03, noop 0x04, unique-id 0x05, netns 0x30, aws-vpce
// 0xEA); VALUE is text, or bytes in hex after a 0x prefix. aws-vpce
// writes AWS's layout: the subtype byte 0x01, then the endpoint id. An
// empty crc32c value asks for the checksum to be computed.
func ParseSendProxyTLV(s string) (proxyproto.TLV, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return proxyproto.TLV{}, &SendProxyError{Field: "tlv", Value: s, Reason: "must be TYPE=VALUE, such as authority=example.com or 0xE0=0x0102"}
	}
	tlv := proxyproto.TLV{}
	name = strings.ToLower(strings.TrimSpace(name))
	named := slices.IndexFunc(proxyTLVNames, func(n proxyTLVName) bool { return n.name == name })
	if named >= 0 {
		tlv.Type = proxyTLVNames[named].typ
	} else {
		digits, base := name, 10
		if hexType, ok := strings.CutPrefix(name, "0x"); ok {
			digits, base = hexType, 16
		}
		n, err := strconv.ParseUint(digits, base, 8)
		if err != nil || n == 0 {
			return proxyproto.TLV{}, &SendProxyError{Field: "tlv", Value: s,
				Reason: "type must be a number from 0x01 to 0xFF or one of " + strings.Join(ProxyTLVNames(), ", ")}
		}
		tlv.Type = proxyproto.PP2Type(n)
	}
	if hexValue, isHex := strings.CutPrefix(value, "0x"); isHex {
		b, err := hex.DecodeString(hexValue)
		if err != nil {
			return proxyproto.TLV{}, &SendProxyError{Field: "tlv", Value: s, Reason: "a value after 0x must be bytes in hex, such as 0x68322f31"}
		}
		tlv.Value = b
	} else {
		tlv.Value = []byte(value)
	}
	if name == "aws-vpce" {
		tlv.Value = append([]byte{awsSubtypeVPCEndpointID}, tlv.Value...)
	}
	if len(tlv.Value) > 0xFFFF {
		return proxyproto.TLV{}, &SendProxyError{Field: "tlv", Value: name + "=...", Reason: "a value holds at most 65535 bytes"}
	}
	if tlv.Type == proxyproto.PP2_TYPE_CRC32C && len(tlv.Value) != 0 && len(tlv.Value) != 4 {
		// Validate says so too, for a SendProxy made otherwise; here
		// the error shows the value as it was written.
		return proxyproto.TLV{}, &SendProxyError{Field: "tlv", Value: s, Reason: crc32cReason}
	}
	return tlv, nil
}

// crc32cReason is why a crc32c TLV's value is refused.
const crc32cReason = "a crc32c value is 4 bytes, or empty to have it computed"

// Validate reports whether p describes a header that can be written: a
// known version, TLVs only with v2, a crc32c TLV that is empty or 4
// bytes, Source and Dest of one family when both are given, and a
// header that fits v2's length field. The error is a *SendProxyError.
func (p *SendProxy) Validate() error {
	switch {
	case p.Version != 1 && p.Version != 2:
		return &SendProxyError{Field: "protocol", Value: strconv.Itoa(p.Version), Reason: "must be v1 or v2"}
	case p.Version == 1 && len(p.TLVs) > 0:
		return &SendProxyError{Field: "tlv", Value: tlvString(p.TLVs[0]), Reason: "needs PROXY protocol v2: v1 has no TLVs"}
	case p.Source.IsValid() && p.Dest.IsValid() && p.Source.Addr().Unmap().Is4() != p.Dest.Addr().Unmap().Is4():
		return &SendProxyError{Field: "dest", Value: p.Dest.String(),
			Reason: fmt.Sprintf("is %s and the source %s is %s: both must be of one family", family(p.Dest), p.Source, family(p.Source))}
	}
	for _, tlv := range p.TLVs {
		if tlv.Type == proxyproto.PP2_TYPE_CRC32C && len(tlv.Value) != 0 && len(tlv.Value) != 4 {
			return &SendProxyError{Field: "tlv", Value: tlvString(tlv), Reason: crc32cReason}
		}
	}
	// With the longest addresses a header holds (IPv6's), the TLVs must
	// fit: counted, not formatted, as a Client checks this on each dial.
	if n := p.maxLen(); n > maxProxyHeader {
		return &SendProxyError{Field: "tlv", Value: fmt.Sprintf("%d TLVs", len(p.TLVs)),
			Reason: fmt.Sprintf("the header would be up to %d bytes, more than v2's %d", n, maxProxyHeader)}
	}
	return nil
}

// maxLen is the length of p's header with IPv6 addresses, the longest:
// v1's longest line, or v2's prefix, addresses and TLVs (an empty crc32c
// TLV gets its 4 bytes).
func (p *SendProxy) maxLen() int {
	if p.Version == 1 {
		return proxyV1MaxLen
	}
	n := proxyV2PrefixLen + 36
	for _, t := range p.TLVs {
		n += 3 + len(t.Value)
		if t.Type == proxyproto.PP2_TYPE_CRC32C && len(t.Value) == 0 {
			n += 4
		}
	}
	return n
}

func family(ap netip.AddrPort) string {
	if ap.Addr().Unmap().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// tlvString shows a TLV as TYPE=VALUE, the value in hex.
func tlvString(tlv proxyproto.TLV) string {
	return fmt.Sprintf("0x%02X=0x%x", byte(tlv.Type), tlv.Value)
}

// Header returns the header for a connection whose own addresses are
// local and remote: p's Source and Dest, each defaulting to the
// connection's own (see SendProxy).
func (p *SendProxy) Header(local, remote net.Addr) ([]byte, error) {
	b, _, err := p.build(local, remote)
	return b, err
}

// build returns the header for a connection, and the go-proxyproto
// Header it was formatted from.
func (p *SendProxy) build(local, remote net.Addr) ([]byte, *proxyproto.Header, error) {
	src, dst := p.Source, p.Dest
	if !src.IsValid() {
		src = addrPortOf(local)
	}
	if !dst.IsValid() {
		dst = addrPortOf(remote)
	}
	h := &proxyproto.Header{Version: byte(p.Version), Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if src.IsValid() && dst.IsValid() {
		// Of two families, IPv6: the IPv4 one as IPv4-mapped.
		h.Command, h.TransportProtocol = proxyproto.PROXY, proxyproto.TCPv6
		if src.Addr().Unmap().Is4() && dst.Addr().Unmap().Is4() {
			h.TransportProtocol = proxyproto.TCPv4
		}
		h.SourceAddr, h.DestinationAddr = net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst)
	}
	tlvs := p.TLVs
	crc := slices.IndexFunc(tlvs, func(t proxyproto.TLV) bool { return t.Type == proxyproto.PP2_TYPE_CRC32C && len(t.Value) == 0 })
	if crc >= 0 {
		tlvs = slices.Clone(tlvs)
		tlvs[crc].Value = make([]byte, 4) // zero while the sum is computed
	}
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			return nil, nil, err
		}
	}
	var b []byte
	var err error
	if p.Version == 2 && len(tlvs) == 0 && h.Command == proxyproto.PROXY {
		// The header of each connection bench makes: formatted as
		// go-proxyproto does (FuzzAppendProxyV2TCP), a fair part of the
		// load generator's cost a connection less.
		b = appendProxyV2TCP(make([]byte, 0, proxyV2PrefixLen+36), src, dst)
	} else {
		b, err = h.Format()
	}
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxProxyHeader {
		return nil, nil, fmt.Errorf("the header would be %d bytes, more than v2's %d", len(b), maxProxyHeader)
	}
	if crc >= 0 {
		// The TLVs end the header: count back to the checksum's value.
		off := len(b)
		for _, t := range tlvs[crc:] {
			off -= 3 + len(t.Value)
		}
		binary.BigEndian.PutUint32(b[off+3:], crc32.Checksum(b, castagnoli))
	}
	return b, h, nil
}

// addrPortOf returns a TCP address as an AddrPort, and the zero AddrPort
// for any other (a Unix socket's).
func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}

// describeProxyHeader shows a header in a log line: v1's text ("PROXY
// TCP4 203.0.113.7 127.0.0.1 41000 10000"), or for v2 its command,
// addresses and TLVs ("v2 PROXY TCP4 203.0.113.7:41000 -> 127.0.0.1:10000,
// 2 TLVs").
func describeProxyHeader(b []byte, h *proxyproto.Header) string {
	if h.Version == 1 {
		return strings.TrimSuffix(string(b), "\r\n")
	}
	var s string
	switch {
	case h.Command.IsLocal():
		s = "v2 LOCAL"
	case h.TransportProtocol == proxyproto.TCPv4:
		s = fmt.Sprintf("v2 PROXY TCP4 %s -> %s", h.SourceAddr, h.DestinationAddr)
	default:
		s = fmt.Sprintf("v2 PROXY TCP6 %s -> %s", h.SourceAddr, h.DestinationAddr)
	}
	if tlvs, _ := h.TLVs(); len(tlvs) == 1 {
		s += ", 1 TLV"
	} else if len(tlvs) > 1 {
		s += fmt.Sprintf(", %d TLVs", len(tlvs))
	}
	return s
}

// checkStreamOptions refuses what a Client cannot do on the address a:
// a greeting over UDP, and a PROXY header that is not valid or that a
// cannot carry (CheckAddr).
func (c *Client) checkStreamOptions(a Addr) error {
	if c.Greeting && a.Network == NetworkUDP {
		return fmt.Errorf("echo: %s: a greeting needs a stream address (tcp, tls or unix)", c.addr())
	}
	if c.Proxy == nil {
		return nil
	}
	if err := c.Proxy.Validate(); err != nil {
		return err
	}
	return c.Proxy.CheckAddr(a)
}

// CheckAddr reports whether p can be written on connections to a: not
// over UDP (out of scope here), and over a Unix socket, which has no IP
// addresses, only with both Source and Dest or neither. The error is a
// *SendProxyError.
func (p *SendProxy) CheckAddr(a Addr) error {
	switch {
	case a.Network == NetworkUDP:
		return &SendProxyError{Field: "protocol", Value: "v" + strconv.Itoa(p.Version), Reason: "needs a stream address (tcp, tls or unix), not " + a.String()}
	case a.Network == NetworkUnix && p.Source.IsValid() != p.Dest.IsValid():
		field, value := "source", p.Source.String()
		if p.Dest.IsValid() {
			field, value = "dest", p.Dest.String()
		}
		return &SendProxyError{Field: field, Value: value, Reason: "a unix:// address has no IP address for the other end: give both source and dest, or neither (v1 UNKNOWN, v2 LOCAL)"}
	}
	return nil
}

// withProxy returns the new connection conn ready to send c.Proxy's
// header first, if c has one: with the first bytes written, or alone
// before the first read (proxyConn).
func (c *Client) withProxy(conn net.Conn) (net.Conn, error) {
	if c.Proxy == nil {
		return conn, nil
	}
	b, h, err := c.Proxy.build(conn.LocalAddr(), conn.RemoteAddr())
	if err != nil {
		return nil, fmt.Errorf("PROXY header: %w", err)
	}
	if e := c.log(zerolog.InfoLevel); e != nil {
		e.Int("bytes", len(b)).Msg("sending PROXY header: " + describeProxyHeader(b, h))
	}
	return &proxyConn{Conn: conn, header: b}, nil
}

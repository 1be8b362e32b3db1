package echo

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pires/go-proxyproto"
)

// proxyHeader is what a connection's PROXY header said (parseProxyHeader).
type proxyHeader struct {
	version byte // 1 or 2
	// command is proxyproto.PROXY or LOCAL; a v1 UNKNOWN header is LOCAL,
	// as go-proxyproto has it.
	command proxyproto.ProtocolVersionAndCommand
	family  proxyproto.AddressFamilyAndProtocol // v1's TCP4 and TCP6 as v2 names them
	// src and dst are the addresses of the TCP and UDP families, as
	// net.TCPAddr.AddrPort gives them (an IPv4-mapped address stays so);
	// srcUnix and dstUnix the paths of the Unix families.
	src, dst         netip.AddrPort
	srcUnix, dstUnix string
	tlvs             []byte // v2's TLVs, not decoded (TLVs)
}

// parseProxyHeader parses b, a whole PROXY header as proxyFrame framed it.
// The headers balancers send for TCP clients (v1 TCP4 and TCP6, v2 PROXY
// over TCP4 and TCP6) it reads itself, without allocating: go-proxyproto
// takes 1.5 µs and 13 allocations for one, a fair part of a short
// connection's cost. Every other header (LOCAL, UNKNOWN, UNIX, UDP, and
// each malformed one) goes to go-proxyproto, whose errors it returns.
// FuzzParseProxyHeader checks that the two read every header alike.
//
// A v2 header with a CRC32C TLV must carry the checksum of the header,
// computed with that TLV's value zeroed (doc/proxy-protocol.txt, 2.2.2):
// go-proxyproto does not check it, so checkTLVs does. It checks too that
// the TLVs of a header that names a client fill it exactly, as HAProxy
// does: go-proxyproto served one whose last TLV ran past its end, and
// the TLVs before it were lost with it.
//
// A v2 PROXY header of the UNSPEC family (a protocol the balancer does not
// name) carries no client: it is served with the connection's own
// addresses, as a LOCAL or v1 UNKNOWN header is (2.2: "the receiver is
// free to accept the connection anyway and use the real endpoint
// addresses"). go-proxyproto refuses it, so it reads it as LOCAL, which
// it takes alike, and the command is put back.
func parseProxyHeader(b []byte) (proxyHeader, error) {
	h, ok := parseProxyTCP(b)
	if !ok {
		in, unspec := b, isProxyV2Unspec(b)
		if unspec {
			in = bytes.Clone(b)
			in[12] = byte(proxyproto.LOCAL)
		}
		lh, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(in), max(len(in), 16)))
		if err != nil {
			return proxyHeader{}, err
		}
		h = headerFrom(lh)
		if unspec {
			h.command = proxyproto.PROXY
		}
	}
	if h.version == 2 && h.hasAddrs() {
		// What follows the address block is TLVs, which must fill the
		// header: go-proxyproto gives none when they do not parse.
		if err := checkTLVs(b, proxyV2PrefixLen+proxyV2AddrLen(h.family), true); err != nil {
			return proxyHeader{}, err
		}
		return h, nil
	}
	if len(h.tlvs) == 0 || !bytes.HasSuffix(b, h.tlvs) {
		return h, nil
	}
	if err := checkTLVs(b, len(b)-len(h.tlvs), false); err != nil {
		return proxyHeader{}, err
	}
	return h, nil
}

// isProxyV2Unspec reports whether b is a v2 header with the PROXY command
// and the UNSPEC family and protocol.
func isProxyV2Unspec(b []byte) bool {
	return len(b) >= 16 && bytes.HasPrefix(b, proxySigV2) &&
		proxyproto.ProtocolVersionAndCommand(b[12]) == proxyproto.PROXY &&
		proxyproto.AddressFamilyAndProtocol(b[13]) == proxyproto.UNSPEC
}

// castagnoli is the table of CRC32C, the PROXY protocol's checksum.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// proxyV2AddrLen is the length of a v2 header's address block for family
// (doc/proxy-protocol.txt, 2.2): source and destination addresses and,
// for IPv4 and IPv6, ports.
func proxyV2AddrLen(family proxyproto.AddressFamilyAndProtocol) int {
	switch {
	case family.IsIPv4():
		return 12
	case family.IsIPv6():
		return 36
	case family.IsUnix():
		return 216
	}
	return 0
}

// checkTLVs verifies the checksum of b, a whole v2 header whose TLVs
// start at offset tlvs, if one of them is a CRC32C TLV; if strict (a
// header that names a client), it also refuses TLVs that do not fill the
// header exactly. A LOCAL or UNSPEC header's body is read as TLVs whole,
// whatever it holds (an address block, for some balancers): not strict.
func checkTLVs(b []byte, tlvs int, strict bool) error {
	i := tlvs
	for ; i+3 <= len(b); i += 3 + int(binary.BigEndian.Uint16(b[i+1:])) {
		typ, n := proxyproto.PP2Type(b[i]), int(binary.BigEndian.Uint16(b[i+1:]))
		if i+3+n > len(b) {
			if strict {
				return fmt.Errorf("malformed PROXY v2 header: TLV type 0x%02x of %d bytes runs %d bytes past its end", byte(typ), n, i+3+n-len(b))
			}
			return nil // not TLVs: the parser read none
		}
		if typ == proxyproto.PP2_TYPE_CRC32C {
			if n != 4 {
				return fmt.Errorf("malformed PROXY v2 header: its CRC32C TLV holds %d bytes, not 4", n)
			}
			zeroed := bytes.Clone(b)
			clear(zeroed[i+3 : i+7])
			if got, said := crc32.Checksum(zeroed, castagnoli), binary.BigEndian.Uint32(b[i+3:]); got != said {
				return fmt.Errorf("malformed PROXY v2 header: its CRC32C checksum is %#08x, the header's bytes give %#08x", said, got)
			}
		}
	}
	if strict && i < len(b) {
		return fmt.Errorf("malformed PROXY v2 header: %d of its bytes after its last TLV, too few for another", len(b)-i)
	}
	return nil
}

// appendProxyV2TCP appends the v2 PROXY header of a TCP connection from
// src to dst, without TLVs, as go-proxyproto formats it: TCP4 when both
// addresses are IPv4 (or IPv4-mapped), else TCP6 with IPv4 addresses
// mapped.
func appendProxyV2TCP(b []byte, src, dst netip.AddrPort) []byte {
	s, d := src.Addr(), dst.Addr()
	b = append(b, proxySigV2...)
	if s.Unmap().Is4() && d.Unmap().Is4() {
		b = append(b, byte(proxyproto.PROXY), byte(proxyproto.TCPv4), 0, 2*4+4)
		s4, d4 := s.Unmap().As4(), d.Unmap().As4()
		b = append(append(b, s4[:]...), d4[:]...)
	} else {
		b = append(b, byte(proxyproto.PROXY), byte(proxyproto.TCPv6), 0, 2*16+4)
		s16, d16 := s.As16(), d.As16()
		b = append(append(b, s16[:]...), d16[:]...)
	}
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, src.Port()), dst.Port())
}

// parseProxyTCP parses b when it is a v1 TCP4 or TCP6 header or a v2 PROXY
// header over TCP4 or TCP6 exactly as go-proxyproto reads it; false for
// every other header, whether valid or not.
func parseProxyTCP(b []byte) (proxyHeader, bool) {
	if len(b) >= proxyV2PrefixLen && bytes.Equal(b[:len(proxySigV2)], proxySigV2) {
		return parseProxyV2TCP(b)
	}
	return parseProxyV1TCP(b)
}

func parseProxyV2TCP(b []byte) (proxyHeader, bool) {
	h := proxyHeader{version: 2, command: proxyproto.PROXY}
	if proxyproto.ProtocolVersionAndCommand(b[12]) != proxyproto.PROXY {
		return h, false
	}
	length := int(binary.BigEndian.Uint16(b[14:16]))
	body := b[proxyV2PrefixLen:]
	if length != len(body) || length > int(proxyproto.MaxV2HeaderSize) {
		return h, false
	}
	h.family = proxyproto.AddressFamilyAndProtocol(b[13])
	var ipLen int // the address block: source and destination IP, then ports
	switch h.family {
	case proxyproto.TCPv4:
		ipLen = 4
	case proxyproto.TCPv6:
		ipLen = 16
	default:
		return h, false
	}
	if length < 2*ipLen+4 {
		return h, false
	}
	ip := func(i int) netip.Addr { a, _ := netip.AddrFromSlice(body[i : i+ipLen]); return a }
	port := func(i int) uint16 { return binary.BigEndian.Uint16(body[2*ipLen+i:]) }
	h.src = netip.AddrPortFrom(ip(0), port(0))
	h.dst = netip.AddrPortFrom(ip(ipLen), port(2))
	body = body[2*ipLen+4:]
	if len(body) > 0 {
		h.tlvs = bytes.Clone(body) // b is the engine's buffer
	}
	return h, true
}

func parseProxyV1TCP(b []byte) (proxyHeader, bool) {
	h := proxyHeader{version: 1, command: proxyproto.PROXY}
	line, ok := bytes.CutSuffix(b, []byte("\r\n"))
	if !ok {
		return h, false
	}
	rest, ok := bytes.CutPrefix(line, []byte("PROXY TCP"))
	if !ok || len(rest) < 2 || rest[1] != ' ' {
		return h, false
	}
	switch rest[0] {
	case '4':
		h.family = proxyproto.TCPv4
	case '6':
		h.family = proxyproto.TCPv6
	default:
		return h, false
	}
	fields := strings.Split(string(rest[2:]), " ")
	if len(fields) != 4 {
		return h, false
	}
	var ips [2]netip.Addr
	for i, s := range fields[:2] {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" || ip.Is4() != (h.family == proxyproto.TCPv4) {
			return h, false // an IPv4 address in a TCP6 line: go-proxyproto's policy
		}
		ips[i] = ip
	}
	var ports [2]uint16
	for i, s := range fields[2:] {
		if len(s) > 1 && s[0] == '0' {
			return h, false
		}
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return h, false
		}
		ports[i] = uint16(p)
	}
	h.src, h.dst = netip.AddrPortFrom(ips[0], ports[0]), netip.AddrPortFrom(ips[1], ports[1])
	return h, true
}

// headerFrom is go-proxyproto's reading of a header as a proxyHeader.
func headerFrom(lh *proxyproto.Header) proxyHeader {
	h := proxyHeader{version: lh.Version, command: lh.Command, family: lh.TransportProtocol}
	h.src, h.srcUnix = addrOf(lh.SourceAddr)
	h.dst, h.dstUnix = addrOf(lh.DestinationAddr)
	// A path names the connection and goes in log lines: a newline in it
	// must not start a line of its own (peerText).
	h.srcUnix, h.dstUnix = peerText(h.srcUnix), peerText(h.dstUnix)
	if tlvs, err := lh.TLVs(); err == nil && len(tlvs) > 0 {
		h.tlvs, _ = proxyproto.JoinTLVs(tlvs)
	}
	return h
}

// addrOf splits a header's address into an address and port, or a path.
func addrOf(a net.Addr) (netip.AddrPort, string) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort(), ""
	case *net.UDPAddr:
		return a.AddrPort(), ""
	case *net.UnixAddr:
		return netip.AddrPort{}, a.Name
	}
	return netip.AddrPort{}, ""
}

// hasAddrs reports whether the header names a client: a PROXY header
// with addresses, not LOCAL, UNKNOWN or UNSPEC.
func (h *proxyHeader) hasAddrs() bool {
	return h.command.IsProxy() && (h.family.IsIPv4() || h.family.IsIPv6() || h.family.IsUnix())
}

// source returns the client the header names (hasAddrs), as a peer.
func (h *proxyHeader) source() peerAddr {
	if h.family.IsUnix() {
		return peerAddr{addr: h.unixAddr(h.srcUnix)}
	}
	return peerAddr{ap: h.src}
}

func (h *proxyHeader) unixAddr(path string) *net.UnixAddr {
	if h.family.IsDatagram() {
		return &net.UnixAddr{Name: path, Net: "unixgram"}
	}
	return &net.UnixAddr{Name: path, Net: "unix"}
}

// appendAddr appends the source (or the destination) address as net
// writes it: host:port, [host]:port for IPv6, an IPv4-mapped address as
// IPv4; a Unix family's path.
func (h *proxyHeader) appendAddr(b []byte, source bool) []byte {
	ap, path := h.dst, h.dstUnix
	if source {
		ap, path = h.src, h.srcUnix
	}
	if h.family.IsUnix() {
		return append(b, path...)
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		b = append(ip.AppendTo(append(b, '[')), ']')
	} else {
		b = ip.AppendTo(b)
	}
	return strconv.AppendUint(append(b, ':'), uint64(ap.Port()), 10)
}

// TLVs decodes the header's TLVs.
func (h *proxyHeader) TLVs() ([]proxyproto.TLV, error) { return proxyproto.SplitTLVs(h.tlvs) }

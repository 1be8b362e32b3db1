package echo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
	"github.com/rs/zerolog"
)

// The PROXY protocol stage (ListenerOptions.ProxyProtocol): an open stage
// (stage.go) that reads a PROXY protocol v1 or v2 header before the echo,
// on both engines, and a TLS listener's before its handshake (goconn.go).
// It frames the header itself, only as far as needed to know how long it
// is, so that not a byte of the echo is taken with it, and parses exactly
// those bytes (proxy_header.go): the common headers itself, the others
// with github.com/pires/go-proxyproto.
//
// After a header the connection is the original client's: its logger name
// and peer are the client's, the balancer's address goes in a "via" field
// of every later log line, and the access list and the per-IP limit apply
// to the client (readmit): at accept, a PROXY listener applies only
// ProxyTrusted and MaxConns to the balancer. A LOCAL (v2), UNKNOWN (v1)
// or v2 UNSPEC header keeps the socket's own addresses, to which the access list and
// the per-IP limit then apply; so do they to the balancer's address when
// the header names a client without one (a Unix socket's path), which no
// rule could name.

// Bounds of a header, from HAProxy's doc/proxy-protocol.txt.
const (
	proxyV1MaxLen    = 107  // the longest v1 line, CRLF included
	proxyV2PrefixLen = 16   // signature, version and command, family, length
	proxyV2MaxBody   = 4096 // the most a v2 header may hold after its prefix (go-proxyproto's cap)
)

var (
	proxySigV1 = []byte("PROXY ")
	proxySigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// Framing errors, each a malformed header.
var (
	errProxyAbsent = errors.New("no PROXY protocol header: the connection starts with other bytes")
	errProxyBareLF = errors.New("malformed PROXY v1 header: a bare LF ends the line (want CRLF)")
	errProxyV1Long = fmt.Errorf("malformed PROXY v1 header: no CRLF within %d bytes", proxyV1MaxLen)
	errProxyV2Long = fmt.Errorf("malformed PROXY v2 header: longer than %d bytes after its prefix", proxyV2MaxBody)
)

// proxyFrame finds the end of the PROXY header at the start of b, the
// bytes a connection has sent so far: n is the header's length once b
// holds it whole (0 while more is needed), version 1 or 2 once known (0
// before). An error means b cannot start with a valid header.
func proxyFrame(b []byte) (n, version int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	switch {
	case hasPrefixOf(b, proxySigV1):
		if len(b) < len(proxySigV1) {
			return 0, 0, nil
		}
		i := bytes.IndexByte(b, '\n')
		switch {
		case i < 0 && len(b) >= proxyV1MaxLen:
			return 0, 1, errProxyV1Long
		case i < 0:
			return 0, 1, nil
		case b[i-1] != '\r':
			return 0, 1, errProxyBareLF
		case i+1 > proxyV1MaxLen:
			return 0, 1, errProxyV1Long
		}
		return i + 1, 1, nil
	case hasPrefixOf(b, proxySigV2):
		if len(b) < proxyV2PrefixLen {
			return 0, 0, nil
		}
		body := int(binary.BigEndian.Uint16(b[14:16]))
		if body > proxyV2MaxBody {
			return 0, 2, errProxyV2Long
		}
		if len(b) < proxyV2PrefixLen+body {
			return 0, 2, nil
		}
		return proxyV2PrefixLen + body, 2, nil
	}
	return 0, 0, errProxyAbsent
}

// hasPrefixOf reports whether b and sig agree on their common length.
func hasPrefixOf(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return bytes.Equal(b[:n], sig[:n])
}

// proxyStage is the PROXY protocol's open stage; a listener's chain holds
// it first when ListenerOptions.ProxyProtocol is on.
type proxyStage struct{}

func (proxyStage) open(c *conn) opener {
	return &proxyReader{c: c, within: c.lconf.opts.proxyTimeout()}
}

// proxyReader reads one connection's PROXY header (an opener).
type proxyReader struct {
	c       *conn
	within  time.Duration
	buf     []byte // the header so far
	need    int    // its length, once known
	version int
	done    bool
	// said is what the header said, once read: the connection points to
	// it (conn.proxy), made with the reader in one allocation.
	said proxied
}

func (*proxyReader) greeting() []byte { return nil }

func (r *proxyReader) reading() (int, time.Duration) {
	switch {
	case r.done:
		return 0, 0
	case r.need > 0:
		return r.need - len(r.buf), r.within
	case r.version == 1:
		return proxyV1MaxLen - len(r.buf), r.within
	}
	// The most a header may hold: take frames the header within what
	// it is given and says how much of it was the header, so a whole
	// header is framed in the read that holds it, uncopied.
	return proxyV2PrefixLen + proxyV2MaxBody - len(r.buf), r.within
}

func (r *proxyReader) take(p []byte) (int, error) {
	// The header so far: p itself when it starts it (the common case, a
	// header whole in the first read), else after what came before.
	old, b := len(r.buf), p
	if old > 0 {
		r.buf = append(r.buf, p...)
		b = r.buf
	}
	n, version, err := proxyFrame(b)
	r.version = version
	if err != nil {
		res := ProxyMalformed
		if err == errProxyAbsent {
			res = ProxyAbsent
		}
		return len(p), &proxyError{version: version, result: res, err: err}
	}
	if n == 0 {
		if old == 0 {
			r.buf = append([]byte(nil), p...) // p is the engine's buffer
		}
		if version == 2 && len(r.buf) >= proxyV2PrefixLen {
			r.need = proxyV2PrefixLen + int(binary.BigEndian.Uint16(r.buf[14:16]))
		}
		return len(p), nil
	}
	r.done = true
	h, err := parseProxyHeader(b[:n])
	r.buf = nil
	if err != nil {
		res := ProxyMalformed
		if errors.Is(err, proxyproto.ErrUnsupportedProtocolVersionAndCommand) || errors.Is(err, proxyproto.ErrUnsupportedAddressFamilyAndProtocol) {
			res = ProxyUnsupported
		}
		return n - old, &proxyError{version: version, result: res, err: err}
	}
	r.said.header = h
	return n - old, r.c.proxied(&r.said)
}

// cutShort is the error that closes a connection whose header did not
// come whole: within its time bound (cause os.ErrDeadlineExceeded), or
// before the peer ended the stream or its read failed, after some of it
// came. A peer that ends before it sends a byte ends as any connection
// does (nil): so does a balancer's plain TCP health check.
func (r *proxyReader) cutShort(cause error) error {
	if errors.Is(cause, os.ErrDeadlineExceeded) {
		return &proxyError{version: r.version, result: ProxyTimeout,
			err: fmt.Errorf("no whole PROXY protocol header within %s", FormatDuration(r.within))}
	}
	if len(r.buf) == 0 {
		return nil
	}
	return &proxyError{version: r.version, result: ProxyMalformed,
		err: fmt.Errorf("incomplete PROXY protocol header: the connection ended after %d bytes of it (%v)", len(r.buf), rootCause(cause))}
}

// proxyError is why a PROXY listener refuses a connection; the engine
// closes it, and logClose reports it (proxyRefused).
type proxyError struct {
	version int
	result  ProxyResult
	err     error
}

func (e *proxyError) Error() string {
	msg := e.err.Error()
	if strings.HasPrefix(msg, "proxyproto: ") { // the library's words
		return e.result.String() + " PROXY protocol header: " + strings.TrimPrefix(msg, "proxyproto: ")
	}
	return msg
}

func (e *proxyError) closeReason() CloseReason { return CloseProxy }

// proxied is what a connection's PROXY header said: the header, and the
// balancer's address ("via") when the header named another client.
type proxied struct {
	header  proxyHeader
	via     string
	summary string // String's, made once
}

// String sums the header up in a line: "v2 PROXY TCP4 203.0.113.7:41000
// -> 10.0.0.5:9000 authority=example.com", "v2 LOCAL", "v1 UNKNOWN".
func (p *proxied) String() string {
	if p.summary == "" {
		p.summary = string(p.header.appendSummary(make([]byte, 0, 64)))
	}
	return p.summary
}

// acceptedLine returns the line that logs a connection accepted with this
// header, and makes the summary (String) a part of it: one allocation for
// both, on every PROXY connection at the default log level.
func (p *proxied) acceptedLine(accepted bool) string {
	var b [256]byte
	line := append(b[:0], "connection accepted"...)
	if accepted {
		line = append(append(line, " via "...), p.via...)
	}
	line = append(line, ": PROXY header: "...)
	start := len(line)
	line = p.header.appendSummary(line)
	end := len(line)
	if !accepted {
		line = append(line, ": served with the connection's own addresses"...)
	}
	s := string(line)
	p.summary = s[start:end]
	return s
}

// appendSummary appends proxied.String's line.
func (h *proxyHeader) appendSummary(b []byte) []byte {
	b = strconv.AppendUint(append(b, 'v'), uint64(h.version), 10)
	switch {
	case h.command.IsLocal() && h.version == 1:
		return append(b, " UNKNOWN"...)
	case h.command.IsLocal():
		return append(b, " LOCAL"...)
	}
	b = append(append(b, " PROXY "...), familyName(h.family)...)
	if h.hasAddrs() {
		b = h.appendAddr(append(b, ' '), true)
		b = h.appendAddr(append(b, " -> "...), false)
	}
	for _, f := range proxyTLVFields(h) {
		b = append(append(append(append(b, ' '), f[0]...), '='), f[1]...)
	}
	return b
}

// familyName names a v2 address family and protocol as v1 does.
func familyName(f proxyproto.AddressFamilyAndProtocol) string {
	switch f {
	case proxyproto.TCPv4:
		return "TCP4"
	case proxyproto.TCPv6:
		return "TCP6"
	case proxyproto.UDPv4:
		return "UDP4"
	case proxyproto.UDPv6:
		return "UDP6"
	case proxyproto.UnixStream:
		return "UNIX"
	case proxyproto.UnixDatagram:
		return "UNIX-DGRAM"
	}
	return "UNSPEC"
}

// proxyTLVFields returns the TLVs of h that tell something about the
// client, parsed, as key and value: alpn, authority, aws_vpce, and from
// the SSL TLV ssl (the version, or "no" when the client did not use TLS),
// ssl_cn, ssl_cipher, ssl_verified; an AWS or SSL TLV that does not parse
// is "malformed". The values are the peer's bytes, made
// fit for a log line (peerText).
func proxyTLVFields(h *proxyHeader) [][2]string {
	if len(h.tlvs) == 0 {
		return nil
	}
	tlvs, err := h.TLVs()
	if err != nil || len(tlvs) == 0 {
		return nil
	}
	var out [][2]string
	for _, t := range tlvs {
		switch {
		case t.Type == proxyproto.PP2_TYPE_ALPN:
			out = append(out, [2]string{"alpn", peerText(string(t.Value))})
		case t.Type == proxyproto.PP2_TYPE_AUTHORITY:
			out = append(out, [2]string{"authority", peerText(string(t.Value))})
		case t.Type == tlvparse.PP2_TYPE_AWS:
			// A VPC endpoint ID, or no subtype at all; another subtype
			// tells nothing of the client.
			if len(t.Value) > 0 && t.Value[0] != tlvparse.PP2_SUBTYPE_AWS_VPCE_ID {
				continue
			}
			id, err := tlvparse.AWSVPCEndpointID(t)
			if err != nil || id == "" {
				id = "malformed"
			}
			out = append(out, [2]string{"aws_vpce", peerText(id)})
		case t.Type == proxyproto.PP2_TYPE_SSL: // too short, tlvparse.SSL says so
			ssl, err := tlvparse.SSL(t)
			if err != nil {
				// Shown, not dropped: the balancer sent one, and what it
				// says about the client's TLS is unknown.
				out = append(out, [2]string{"ssl", "malformed"})
				continue
			}
			if !ssl.ClientSSL() {
				out = append(out, [2]string{"ssl", "no"})
				continue
			}
			v, _ := ssl.SSLVersion()
			out = append(out, [2]string{"ssl", peerText(v)})
			if cn, ok := ssl.ClientCN(); ok {
				out = append(out, [2]string{"ssl_cn", peerText(cn)})
			}
			if c, ok := ssl.SSLCipher(); ok {
				out = append(out, [2]string{"ssl_cipher", peerText(c)})
			}
			if ssl.ClientCertConn() || ssl.ClientCertSess() {
				out = append(out, [2]string{"ssl_verified", fmt.Sprint(ssl.Verified())})
			}
		}
	}
	return out
}

// via returns the balancer's address that the connection's PROXY header
// came through, or "" when there was none (no header, LOCAL, UNKNOWN).
func (c *conn) via() string {
	if c.proxy == nil {
		return ""
	}
	return c.proxy.via
}

// proxySummary returns what the connection's PROXY header said in one
// line (proxied.String), or "none".
func (c *conn) proxySummary() string {
	if c.proxy == nil {
		return "none"
	}
	return c.proxy.String()
}

// proxied makes c the original client's that p's header names (p is
// c's from then on), or leaves it the socket's for LOCAL and UNKNOWN, and
// applies the access list and the per-IP limit to whom it then is
// (readmit): to the balancer when the client has no IP address.
func (c *conn) proxied(p *proxied) error {
	h := &p.header
	ip, hasIP := c.ip, c.ip.IsValid()
	result := ProxyLocal
	if h.hasAddrs() {
		result = ProxyAccepted
		p.via = c.peer
		src := h.source()
		c.srv.nameConn(c, nil, src)
		if sip, ok := src.ip(); ok {
			ip, hasIP = sip, true
		}
	}
	c.proxy = p
	c.proxyCount(int(h.version), result)
	if err := c.srv.readmit(c, ip, hasIP); err != nil {
		return err // refused, and logged so: no accept line
	}
	// The connection's accept line, logged once the header says whose it
	// is (Server.accepted leaves it to here), so that a PROXY connection
	// costs the log lines of any other; on TLS once the handshake has
	// passed, as any TLS connection's.
	if !c.acceptLater {
		c.logAccepted()
	} else if e := c.log(zerolog.DebugLevel); e != nil {
		e.Str("proxy", p.String()).Msg("PROXY header: " + p.String() + "; the TLS handshake next")
	}
	if e := c.log(zerolog.DebugLevel); e != nil {
		if fs := proxyTLVFields(h); len(fs) > 0 {
			msg := "PROXY header TLVs:"
			for _, f := range fs {
				e = e.Str("tlv_"+f[0], f[1])
				msg += " " + f[0] + "=" + f[1]
			}
			e.Msg(msg)
		} else {
			e.Discard()
		}
	}
	return nil
}

// balancerCheck reports whether c is the balancer's own connection, as
// its health checks are: a LOCAL (v2) or UNKNOWN (v1) PROXY header, or one
// whose source is the balancer's own end of this connection (HAProxy's v1
// check-send-proxy sends its check's addresses). HAProxy ends its checks
// with a reset (haproxy/haproxy#560), which is then no warning.
func (c *conn) balancerCheck() bool {
	if c.proxy == nil {
		return false
	}
	h := &c.proxy.header
	return !h.hasAddrs() || string(h.appendAddr(nil, true)) == c.proxy.via
}

// proxyCount tells the observer of a header's result.
func (c *conn) proxyCount(version int, r ProxyResult) {
	if po, ok := c.obs.(ProxyObserver); ok {
		po.ProxyHeader(version, r)
	}
}

// proxyRefused counts a connection that a PROXY listener refuses and
// logs why at warn, at most once a second for each result on each
// listener; the line counts those held back since the last.
func (c *conn) proxyRefused(pe *proxyError) {
	c.proxyCount(pe.version, pe.result)
	e := c.log(zerolog.WarnLevel)
	if e == nil {
		return
	}
	lconf, result := c.lconf, pe.result
	ok, suppressed := lconf.proxyWarns[result].allow(time.Now(), time.Second, func(n int) {
		c.srv.Logger.Warn().Str("logger", "main").Str("listener", lconf.name).Str("reason", result.String()).Int("refused_unlogged", n).
			Msgf("%d more connections refused for a PROXY header (%s) since the last report", n, result)
	})
	if !ok {
		e.Discard()
		return
	}
	msg := pe.Error()
	if suppressed > 0 {
		msg += fmt.Sprintf(" (%d more refused for this reason since the last report)", suppressed)
	}
	e.Str("reason", pe.result.String()).Int("refused_unlogged", suppressed).Msg(msg)
}

// proxyTrusts reports whether a PROXY listener accepts connections from
// ip: every peer when ProxyTrusted is empty, and peers without an IP
// address (Unix sockets).
func (lc *listenerConf) proxyTrusts(ip netip.Addr, hasIP bool) bool {
	if len(lc.opts.ProxyTrusted) == 0 || !hasIP {
		return true
	}
	for _, p := range lc.opts.ProxyTrusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// errProxyUntrusted refuses a peer outside ProxyTrusted.
var errProxyUntrusted = errors.New("connection refused: the peer is not a trusted PROXY protocol sender (proxy-trusted)")

// headConn is the connection under a TLS connection of a PROXY listener:
// it hands the handshake what was read past the header first.
type headConn struct {
	net.Conn
	head []byte
}

func (c *headConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection below, for lingerClose.
func (c *headConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// headListener makes the connections it accepts headConns, for
// tls.NewListener on a PROXY listener.
type headListener struct{ net.Listener }

func (l headListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &headConn{Conn: c}, nil
}

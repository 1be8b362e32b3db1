package cmd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/echoctl/echoctl/internal/tlsconfig"
	"github.com/echoctl/echoctl/pkg/echo"
)

// udpRateReason is the reason given for an invalid udp-rate-per-source.
const udpRateReason = "must be 0 (no limit) or DATAGRAMS/s,BYTES/s such as 100/s,256KiB/s (byte units B, KB, KiB, MB, MiB, GB, GiB; at most 10000000/s and 1GiB/s)"

// unixModeReason is the reason given for an invalid unix-mode.
const unixModeReason = `must be an octal permission from 0001 to 0777, such as 0660 (in YAML write 0660 or "0660"; 660 is decimal)`

// TransportConfig is the validated configuration of TLS, Unix sockets and
// UDP.
type TransportConfig struct {
	// TLSCert and TLSKey are PEM files: serve's certificate and key, or
	// send's client certificate and key. Both or neither.
	TLSCert, TLSKey string
	// TLSClientCA (serve) holds the CAs of mutual TLS: clients must present
	// a certificate one of them signed.
	TLSClientCA string
	// TLSSelfSigned (serve) makes an in-memory certificate instead of
	// TLSCert and TLSKey.
	TLSSelfSigned bool
	// TLSCA (send) holds the CAs that verify the server; "" for the
	// system's roots.
	TLSCA string
	// TLSServerName (send) is the name the server's certificate must hold;
	// "" for the host of addr.
	TLSServerName string
	// TLSInsecure (send) skips verifying the server's certificate.
	TLSInsecure bool
	// UnixMode (serve) is the permission of Unix socket files.
	UnixMode os.FileMode
	// Retries (send over UDP) is how often a datagram without an echo is
	// resent.
	Retries int
	// UDPAllowLowPorts (serve) answers datagrams from source ports below
	// 1024 too; see echo.Server.UDPAllowLowPorts.
	UDPAllowLowPorts bool
	// UDPRatePerSource (serve) bounds what one source address is answered;
	// the zero PacketRate, from "0", turns the limit off.
	UDPRatePerSource echo.PacketRate
	// ProxyProtocol, ProxySource, ProxyDest and ProxyTLVs (send, bench)
	// are the PROXY header's keys as given; Proxy is the header they
	// describe, nil for none.
	ProxyProtocol, ProxySource, ProxyDest string
	ProxyTLVs                             []string
	Proxy                                 *echo.SendProxy
}

// multiAddr reports whether the addr key may hold several addresses: only
// serve's --addr, a repeatable flag, does.
func (d *decoder) multiAddr() bool {
	f := d.flags.Lookup(keyAddr)
	return f != nil && f.Value.Type() == "stringArray"
}

// serving reports whether the command being configured is serve, the one
// with --tls-self-signed; the checks that only make sense for a server use
// it.
func (d *decoder) serving() bool { return d.flags.Lookup(keyTLSSelfSigned) != nil }

// socketOf names the socket an address listens on: one for each
// transport (TLS is TCP) and IP address however it is written ([0:0::1]
// is [::1], [::ffff:127.0.0.1] is 127.0.0.1).
func socketOf(a echo.Addr) string {
	if a.Network == echo.NetworkUnix {
		return "unix " + a.Path
	}
	network, host := "tcp", a.Host
	if a.Network == echo.NetworkUDP {
		network = "udp"
	}
	if dualStackWildcard(host) {
		host = "::"
	} else if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return fmt.Sprintf("%s %s %d", network, host, a.Port)
}

// listedAddr is an address of serve's list, parsed, and as it was given.
type listedAddr struct {
	addr echo.Addr
	text string
}

// overlapping returns the text of the address of listed whose socket
// cannot listen beside a's (the kernel's "address already in use"): one
// on the same port and transport whose host is a wildcard covering the
// other's, and which of them it covers ("" every address, "IPv4 " every
// IPv4 one); "" if there is none. An empty host and [::] (dual-stack)
// cover every host; 0.0.0.0 covers IPv4 addresses. A host name is not
// resolved: it is covered by a dual-stack wildcard only.
func overlapping(listed []listedAddr, a echo.Addr) (text, every string) {
	if a.Network == echo.NetworkUnix || a.Port == 0 {
		return "", ""
	}
	udp := a.Network == echo.NetworkUDP
	for _, l := range listed {
		if l.addr.Network == echo.NetworkUnix || l.addr.Port != a.Port || (l.addr.Network == echo.NetworkUDP) != udp {
			continue
		}
		if e, ok := covers(l.addr.Host, a.Host); ok {
			return l.text, e
		}
		if e, ok := covers(a.Host, l.addr.Host); ok {
			return l.text, e
		}
	}
	return "", ""
}

// dualStackWildcard reports whether a socket bound to host listens on
// every address, IPv4 and IPv6: an empty host, [::], and [::ffff:0.0.0.0],
// which Go binds as [::].
func dualStackWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && (ip == netip.IPv6Unspecified() || ip.Is4In6() && ip.Unmap() == netip.IPv4Unspecified())
}

// covers reports whether a socket bound to host w on a port also takes
// host h's address on it, and which addresses w stands for.
func covers(w, h string) (every string, ok bool) {
	if w == h {
		return "", false // the same socket: listed twice
	}
	wip, err := netip.ParseAddr(w)
	switch {
	case dualStackWildcard(w):
		return "", true
	case err == nil && wip == netip.IPv4Unspecified():
		hip, err := netip.ParseAddr(h)
		return "IPv4 ", err == nil && hip.Unmap().Is4()
	}
	return "", false
}

// addrs decodes the addr key: one address, or for serve a list of them (a
// list in the config file, a repeated --addr, and in ECHOCTL_ADDR a JSON
// array or a comma-separated list). Each must be accepted by
// echo.ParseAddr; the error gives its reason.
func (d *decoder) addrs(key string) []string {
	raw := d.v.Get(key)
	var list []string
	switch x := raw.(type) {
	case string:
		var ok bool
		if list, ok = splitAddrList(x); !ok {
			d.fail(key, raw, `must be an address, or a JSON array of addresses such as ["tcp://:7", "udp://:7"]`)
			return nil
		}
		if slices.Contains(list, "") && len(list) > 1 {
			d.fail(key, raw, `an item is empty (a stray comma?): must be addresses separated by commas, such as tcp://:7,udp://:7`)
			return nil
		}
	case []string:
		list = x
		if len(x) == 0 {
			// serve --addr '': viper reads the repeated flag's "[]" as no
			// address at all; say what was given.
			list = []string{""}
		}
	case []any:
		var ok bool
		if list, ok = stringItems(x); !ok {
			d.fail(key, raw, "must be a string host:port or URL, or a list of them")
			return nil
		}
	default:
		d.fail(key, raw, "must be a string host:port")
		return nil
	}
	switch {
	case len(list) == 0:
		d.fail(key, raw, "must name at least one address")
		return nil
	case len(list) > 1 && !d.multiAddr():
		d.fail(key, raw, fmt.Sprintf("%s connects to one address; this names %d", d.flags.Name(), len(list)))
		return nil
	}
	seen := make(map[string]string, len(list)) // by socket: tcp://h:p and h:p are one
	var listed []listedAddr                    // for overlapping sockets
	parse := echo.ParseAddr
	if d.multiAddr() {
		parse = parseServeAddr // serve's may carry per-listener options
	}
	for _, s := range list {
		a, err := parse(s)
		if err != nil {
			reason := err.Error()
			var ae *echo.AddrError
			if errors.As(err, &ae) {
				reason = ae.Reason
			}
			d.fail(key, s, reason)
			return nil
		}
		sock := socketOf(a)
		if first, ok := seen[sock]; ok && (a.Port != 0 || a.Network == echo.NetworkUnix) { // each :0 gets a port of its own
			reason := "is listed twice"
			if first != s {
				reason = fmt.Sprintf("is the socket %q listens on already", first)
			}
			d.fail(key, s, reason)
			return nil
		}
		if first, every := overlapping(listed, a); first != "" {
			d.fail(key, s, fmt.Sprintf("overlaps %q: one of them listens on every %saddress at port %d, the other's included", first, every, a.Port))
			return nil
		}
		listed = append(listed, listedAddr{a, s})
		if !d.multiAddr() && a.Network != echo.NetworkUnix && a.Port == 0 {
			d.fail(key, s, "port 0 picks a free port to listen on, for serve: give the server's port")
			return nil
		}
		seen[sock] = s
	}
	return list
}

// looksLikeJSONList tells a JSON list (`["...` or `[]`) from an IPv6
// address, which starts with "[" too ("[::1]:7").
func looksLikeJSONList(s string) bool {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "[")
	rest = strings.TrimSpace(rest)
	return ok && (rest == "" || rest[0] == '"' || rest[0] == ']')
}

// splitAddrList splits one string holding addresses: a JSON array if it
// starts with "[", else a comma-separated list (spaces around the commas
// are dropped). It reports false for a JSON array that does not parse.
func splitAddrList(s string) ([]string, bool) {
	if looksLikeJSONList(s) {
		return jsonStrings(s)
	}
	if !strings.Contains(s, ",") {
		return []string{s}, true
	}
	var list []string
	for _, item := range strings.Split(s, ",") {
		list = append(list, strings.TrimSpace(item)) // an empty one is refused
	}
	return list, true
}

// checkTransport checks the TLS keys together, once every key is decoded
// without error: certificate and key files load and match, CA files hold
// certificates, and (for serve) every tls:// address has a certificate.
// The files are read only by a command that will use them, one with a
// tls:// address: a shared config file's server certificate, which only
// the service may read, does not stop a user's plain send.
func (d *decoder) checkTransport(cfg *Config) {
	t := cfg.Transport
	if d.err != nil {
		return
	}
	reads := usesTLS(cfg, d.serving())
	switch {
	case t.TLSCert != "" && t.TLSKey == "":
		d.fail(keyTLSCert, t.TLSCert, "needs tls-key too")
	case t.TLSKey != "" && t.TLSCert == "":
		d.fail(keyTLSKey, t.TLSKey, "needs tls-cert too")
	case t.TLSCert != "" && reads:
		if _, err := tlsconfig.LoadKeyPair(t.TLSCert, t.TLSKey); err != nil {
			d.failFile(err)
		}
	}
	for _, f := range []struct{ key, file, role string }{
		{keyTLSClientCA, t.TLSClientCA, tlsconfig.RoleClientCA},
		{keyTLSCA, t.TLSCA, tlsconfig.RoleCA},
	} {
		if f.file != "" && reads {
			if _, err := tlsconfig.LoadCertPool(f.file, f.role); err != nil {
				d.failFile(err)
			}
		}
	}
	if !d.serving() {
		d.checkProxy(cfg)
		if d.err == nil {
			d.warnUnusedClient(cfg)
		}
		return
	}
	if t.TLSSelfSigned && t.TLSCert != "" {
		d.fail(keyTLSSelfSigned, true, "conflicts with tls-cert: give a certificate or ask for a self-signed one, not both")
	}
	for _, s := range cfg.Addrs {
		a, err := parseServeAddr(s)
		if err == nil && a.Network == echo.NetworkTLS && t.TLSCert == "" && !t.TLSSelfSigned {
			d.fail(keyAddr, s, "a tls:// address needs tls-cert and tls-key, or tls-self-signed")
		}
	}
	if d.err == nil {
		d.warnUnused(cfg)
	}
}

// usesTLS reports whether the command will read the TLS files: serve
// with a tls:// address, a client whose address is tls://.
func usesTLS(cfg *Config, serving bool) bool {
	if !serving {
		a, err := echo.ParseAddr(cfg.Addr)
		return err == nil && a.Network == echo.NetworkTLS
	}
	for _, s := range cfg.Addrs {
		if a, err := parseServeAddr(s); err == nil && a.Network == echo.NetworkTLS {
			return true
		}
	}
	return false
}

// proxyKeys name the key of each field of an *echo.SendProxyError.
var proxyKeys = map[string]string{"protocol": keyProxyProtocol, "source": keyProxySource, "dest": keyProxyDest, "tlv": keyProxyTLV}

// checkProxy builds send's and bench's PROXY header from its keys, which
// echo.ParseSendProxy checks together, and refuses it where the address
// cannot carry it (SendProxy.CheckAddr).
func (d *decoder) checkProxy(cfg *Config) {
	t := &cfg.Transport
	p, err := echo.ParseSendProxy(t.ProxyProtocol, t.ProxySource, t.ProxyDest, t.ProxyTLVs)
	var pe *echo.SendProxyError
	switch {
	case errors.As(err, &pe):
		d.fail(proxyKeys[pe.Field], pe.Value, pe.Reason)
		return
	case err != nil:
		d.fail(keyProxyProtocol, t.ProxyProtocol, err.Error())
		return
	}
	t.Proxy = p
	if a, err := echo.ParseAddr(cfg.Addr); p != nil && err == nil {
		if errors.As(p.CheckAddr(a), &pe) {
			d.fail(proxyKeys[pe.Field], pe.Value, pe.Reason)
		}
	}
}

// checkProxyGiven checks, for a command that writes no PROXY header
// (serve, ping), the header's keys as given, since every command checks
// every key: each must be a value that send could take (TLVs as v2 takes
// them), and proxy-protocol, on ping, one of send's or serve's (serve
// decodes its own). checkProxy checks them, with the address, for the
// commands that write a header.
func (d *decoder) checkProxyGiven(cfg *Config) {
	if f := d.flags.Lookup(keyProxySource); d.err != nil || f != nil && isKeyFlag(f) {
		return
	}
	t := cfg.Transport
	if !d.serving() && !slices.Contains([]string{"", "v1", "v2", "1", "2", "on", "off"}, strings.TrimSpace(t.ProxyProtocol)) {
		d.fail(keyProxyProtocol, t.ProxyProtocol, "must be v1 or v2 (send, bench), or off or on (serve)")
		return
	}
	var pe *echo.SendProxyError
	if _, err := echo.ParseSendProxy("v2", t.ProxySource, t.ProxyDest, t.ProxyTLVs); errors.As(err, &pe) {
		d.fail(proxyKeys[pe.Field], pe.Value, pe.Reason)
	}
}

// packetRate decodes a per-source UDP rate: "0" (or the number 0 from a
// config file) for no limit, else a string that echo.ParsePacketRate
// reads, such as "100/s,256KiB/s".
func (d *decoder) packetRate(key string) echo.PacketRate {
	raw := d.v.Get(key)
	var s string
	switch x := raw.(type) {
	case string:
		s = x
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	}
	r, err := echo.ParsePacketRate(s)
	if err != nil {
		d.fail(key, raw, udpRateReason)
	}
	return r
}

// failFile reports a *tlsconfig.FileError against the key that named the
// file.
func (d *decoder) failFile(err error) {
	var fe *tlsconfig.FileError
	if !errors.As(err, &fe) {
		d.fail(keyTLSCert, "", err.Error())
		return
	}
	key := map[string]string{
		tlsconfig.RoleCert:     keyTLSCert,
		tlsconfig.RoleKey:      keyTLSKey,
		tlsconfig.RoleClientCA: keyTLSClientCA,
		tlsconfig.RoleCA:       keyTLSCA,
	}[fe.Role]
	d.fail(key, fe.Path, fe.Reason())
}

// optionalString decodes a string that may be empty.
func (d *decoder) optionalString(key string) string {
	raw := d.v.Get(key)
	if raw == nil {
		return ""
	}
	s, _ := d.str(key)
	return s
}

// boolean decodes true or false (from the environment also 1, 0, t, f).
func (d *decoder) boolean(key string) bool {
	raw := d.v.Get(key)
	switch x := raw.(type) {
	case nil:
		return false
	case bool:
		return x
	case string: // the environment's, case-sensitive as every value
		switch strings.TrimSpace(x) {
		case "true", "1", "t":
			return true
		case "false", "0", "f":
			return false
		}
	}
	d.fail(key, raw, "must be true or false (in the environment also 1, 0, t or f)")
	return false
}

// fileMode decodes an octal permission such as "0660". Numbers from a
// config file are taken as the mode's value: YAML reads 0660, and TOML
// 0o660, as octal.
func (d *decoder) fileMode(key string) os.FileMode {
	raw := d.v.Get(key)
	var n uint64
	var err error
	switch x := raw.(type) {
	case string:
		s := strings.TrimSpace(x)
		s = strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
		n, err = strconv.ParseUint(s, 8, 32)
	case int:
		n, err = uint64(x), nonNegative(int64(x))
	case int64:
		n, err = uint64(x), nonNegative(x)
	case uint64:
		n = x
	case float64:
		n = uint64(x)
		if float64(n) != x {
			err = errors.New("not an integer")
		}
	default:
		err = errors.New("not a permission")
	}
	if err != nil || n == 0 || n > 0o777 {
		d.fail(key, raw, unixModeReason)
		return 0
	}
	return os.FileMode(n)
}

func nonNegative(n int64) error {
	if n < 0 {
		return errors.New("negative")
	}
	return nil
}

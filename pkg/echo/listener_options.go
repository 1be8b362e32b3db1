package echo

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DefaultProxyTimeout bounds the wait for a PROXY protocol header when
// ListenerOptions.ProxyTimeout is zero.
const DefaultProxyTimeout = 5 * time.Second

// ListenerOptions are the settings that apply to one listener's
// connections, which a Server may serve differently on each of its
// addresses. Server.ListenerOptions holds those of every listener; the
// address of a listener given to Bind may override them in a query of
// per-listener keys (ListenerKeys), as ParseListenAddr reads it:
// "tcp://:9000?proxy-protocol=on&proxy-trusted=10.0.0.0/8",
// "udp://:9002?fault-drop=0.1". The zero value serves every connection as
// the seed does: no PROXY protocol, and the Server's Faults.
type ListenerOptions struct {
	// ProxyProtocol makes the listener read a PROXY protocol header (v1,
	// text, or v2, binary, as HAProxy's doc/proxy-protocol.txt describes
	// them) before the echo, from every peer (or from the peers in
	// ProxyTrusted when that is set); a connection without one, or with a
	// malformed one, is closed. The header is never echoed: the
	// connection is named after the client it names (its logger, its
	// peer), the balancer's address goes in a "via" field, and the access
	// list and the per-IP limit apply to that client. A LOCAL (v2) or
	// UNKNOWN (v1) header, as balancers' health checks send, is served
	// with the socket's own addresses. A TLS listener reads the header
	// before the handshake. It applies to stream listeners (TCP, TLS and
	// Unix sockets); ServePacket ignores it (a udp:// address may not set
	// it).
	ProxyProtocol bool

	// ProxyTrusted, if not empty, are the only peers from which a
	// ProxyProtocol listener accepts connections (the balancers): a peer
	// outside them is refused at once. Peers without an IP address (Unix
	// sockets) are trusted. Empty: every peer must send a header.
	ProxyTrusted []netip.Prefix

	// ProxyTimeout bounds how long after a connection opens its PROXY
	// header may take to arrive whole. If zero, DefaultProxyTimeout (5s)
	// is used. It must not exceed MaxTimeout.
	ProxyTimeout time.Duration

	// DisableDeferAccept makes a TCP or TLS listener that Bind makes take
	// each connection as soon as its handshake completes, rather than at
	// its first byte where nothing else needs it sooner (defersAccept, on
	// Linux): to see every connection, those that send nothing included,
	// when it opens.
	DisableDeferAccept bool

	// Faults are fault keys (FaultKeys: "delay", "drop", ...) set for
	// this listener alone, each with its text value as Faults.Set reads
	// it. They apply over the Server's Faults key by key ("0" turns one
	// off), and stay over them when SetFaults replaces the Server's
	// faults. A listener with faults of its own runs the fault stage
	// even when Server.Faults is nil. An address query sets them as
	// fault-* keys: "tcp://:9001?fault-delay=50ms&fault-share=0.5".
	// Nil: the Server's faults as they are.
	Faults map[string]string
}

// faultsOver returns base (nil: none) with o's fault keys set over it, a
// new Faults; nil when neither sets any.
func (o ListenerOptions) faultsOver(base *Faults) (*Faults, error) {
	if base == nil && len(o.Faults) == 0 {
		return nil, nil
	}
	f := &Faults{}
	if base != nil {
		*f = *base
	}
	for _, k := range faultKeys { // in a fixed order, for the same error each time
		if v, ok := o.Faults[k.name]; ok {
			if err := f.Set(k.name, v); err != nil {
				return nil, err
			}
		}
	}
	for name := range o.Faults {
		if !slices.Contains(FaultKeys(), name) {
			return nil, fmt.Errorf("%w: unknown key %q (want one of %s)", ErrInvalidFault, name, strings.Join(FaultKeys(), ", "))
		}
	}
	return f, f.Validate()
}

// proxyTimeout returns ProxyTimeout or its default.
func (o ListenerOptions) proxyTimeout() time.Duration {
	if o.ProxyTimeout > 0 {
		return o.ProxyTimeout
	}
	return DefaultProxyTimeout
}

// A ListenerKey is one of the ListenerOptions as text: the key of an
// address's query (ParseListenAddr), which echoctl serve also takes as a
// flag of the same name (--proxy-protocol), so that both read it alike.
type ListenerKey struct {
	// Name is the key: "proxy-protocol".
	Name string
	// Default is the option's default, of the type a flag holding it
	// has: string, time.Duration, or []string for a comma-separated
	// list. Its text form is what Set reads.
	Default any
	// Usage says in one line what the key does, as a flag's help does.
	Usage string

	set      func(o *ListenerOptions, value string) error
	networks []string // the networks that take it (NetworkTCP...); nil: every one
}

// Set parses value, the key's text form, into its option in o. The error
// says why the value is wrong, in words that follow the key and its value
// ("want on or off").
func (k ListenerKey) Set(o *ListenerOptions, value string) error { return k.set(o, value) }

// Networks returns the networks (NetworkTCP, NetworkUDP, ...) whose
// listeners k acts on; nil for every one.
func (k ListenerKey) Networks() []string { return slices.Clone(k.networks) }

// allowedOn reports why k may not be set on network, or "".
func (k ListenerKey) allowedOn(network string) string {
	if k.networks == nil {
		return ""
	}
	for _, n := range k.networks {
		if n == network {
			return ""
		}
	}
	if strings.HasPrefix(k.Name, "proxy-") {
		return "PROXY protocol is not supported on " + network + ":// listeners"
	}
	return fmt.Sprintf("%s is not supported on %s:// listeners", k.Name, network)
}

// streamNetworks are the networks of stream listeners.
var streamNetworks = []string{NetworkTCP, NetworkTLS, NetworkUnix}

// listenerKeys is the one table of per-listener keys: the PROXY
// protocol's, defer-accept, then the faults' (faultListenerKeys).
var listenerKeys = append([]ListenerKey{
	{
		Name: "proxy-protocol", Default: "", networks: streamNetworks,
		Usage: "require a PROXY protocol v1 or v2 header (HAProxy's send-proxy) from each peer before the echo: off or on (per listener: ADDR?proxy-protocol=on) (default: off)",
		set: func(o *ListenerOptions, v string) (err error) {
			o.ProxyProtocol, err = parseOnOff(v, false)
			return err
		},
	},
	{
		Name: "proxy-trusted", Default: []string{}, networks: streamNetworks,
		Usage: "with proxy-protocol: accept connections only from these CIDR prefixes or IP addresses (the balancers), refusing the others (default: every peer must send a header)",
		set: func(o *ListenerOptions, v string) error {
			var ps []netip.Prefix
			for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
				p, err := ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("%q is not an IP address or a CIDR prefix such as 10.0.0.0/8", s)
				}
				ps = append(ps, p)
			}
			o.ProxyTrusted = ps
			return nil
		},
	},
	{
		Name: "proxy-timeout", Default: DefaultProxyTimeout, networks: streamNetworks,
		Usage: "with proxy-protocol: close a connection whose PROXY header has not come whole this long after it opened",
		set: func(o *ListenerOptions, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d <= 0 || d > MaxTimeout {
				return fmt.Errorf("want a duration such as 5s, more than 0 and at most %s", FormatDuration(MaxTimeout))
			}
			o.ProxyTimeout = d
			return nil
		},
	},
	{
		Name: "defer-accept", Default: "", networks: []string{NetworkTCP, NetworkTLS},
		Usage: "take a TCP or TLS connection at its first byte (TCP_DEFER_ACCEPT, Linux), when no greeting, refusing or timed fault, limit, access list, idle timeout, -v or metrics needs it sooner: on, or off to take every connection when its handshake completes (default: on)",
		set: func(o *ListenerOptions, v string) error {
			on, err := parseOnOff(v, true)
			o.DisableDeferAccept = !on
			return err
		},
	},
}, faultListenerKeys()...)

// parseOnOff reads a switch key's value: on or true, off or false
// (case-sensitive, as every value), empty for def.
func parseOnOff(v string, def bool) (bool, error) {
	switch strings.TrimSpace(v) {
	case "on", "true":
		return true, nil
	case "off", "false":
		return false, nil
	case "":
		return def, nil
	}
	return def, errors.New("want on or off")
}

// FaultKeyPrefix starts the name of a fault's per-listener key: "fault-"
// and a key of FaultKeys ("fault-delay").
const FaultKeyPrefix = "fault-"

// faultListenerKeys are the per-listener keys of the faults, one for each
// of faultKeys: each sets its key in ListenerOptions.Faults, after
// checking its value. An empty value unsets it (the Server's applies).
func faultListenerKeys() []ListenerKey {
	var lks []ListenerKey
	for _, fk := range faultKeys {
		var def any = ""
		if fk.name == "share" {
			def = "1"
		}
		lks = append(lks, ListenerKey{
			Name: FaultKeyPrefix + fk.name, Default: def, Usage: "fault: " + fk.usage, networks: fk.networks,
			set: func(o *ListenerOptions, v string) error {
				if err := fk.set(&Faults{}, v); err != nil && strings.TrimSpace(v) != "" {
					return err
				}
				m := maps.Clone(o.Faults)
				if m == nil {
					m = make(map[string]string)
				}
				if strings.TrimSpace(v) == "" {
					delete(m, fk.name)
				} else {
					m[fk.name] = v
				}
				if len(m) == 0 {
					m = nil
				}
				o.Faults = m
				return nil
			},
		})
	}
	return lks
}

// ListenerKeys returns the per-listener keys, in the order the docs list
// them.
func ListenerKeys() []ListenerKey { return append([]ListenerKey(nil), listenerKeys...) }

// listenerKey returns the key named name.
func listenerKey(name string) (ListenerKey, bool) {
	for _, k := range listenerKeys {
		if k.Name == name {
			return k, true
		}
	}
	return ListenerKey{}, false
}

// ParseListenAddr parses an address to listen on: what ParseAddr reads,
// optionally followed by "?" and per-listener options as key=value pairs
// joined by "&" (ListenerKeys; values may be %-escaped), which override
// defaults for this address alone:
//
//	tcp://:9000?proxy-protocol=on&proxy-trusted=10.0.0.0/8
//	unix:///run/echo.sock?proxy-protocol=on
//
// It returns the address and its resolved options. A unix:// path cannot
// hold "?" here. An unknown key, a key given twice, a bad value or a key
// the network does not take is an *AddrError.
func ParseListenAddr(s string, defaults ListenerOptions) (Addr, ListenerOptions, error) {
	base, query, hasQuery := strings.Cut(s, "?")
	a, err := ParseAddr(base)
	if err != nil {
		if ae, ok := err.(*AddrError); ok {
			ae.Addr = s
		}
		return Addr{}, defaults, err
	}
	opts := defaults
	if !hasQuery {
		return a, opts, nil
	}
	fail := func(reason string) (Addr, ListenerOptions, error) {
		return Addr{}, defaults, &AddrError{Addr: s, Reason: reason}
	}
	if query == "" {
		return fail(`nothing after "?": want per-listener options such as ?proxy-protocol=on`)
	}
	seen := make(map[string]bool)
	for _, pair := range strings.Split(query, "&") {
		rawKey, rawValue, ok := strings.Cut(pair, "=")
		name, kerr := url.QueryUnescape(rawKey)
		value, verr := url.QueryUnescape(rawValue)
		switch {
		case kerr != nil || verr != nil:
			return fail(fmt.Sprintf("option %q is not %%-escaped correctly", pair))
		case !ok || name == "":
			return fail(fmt.Sprintf("option %q: want key=value, such as proxy-protocol=on", pair))
		}
		k, known := listenerKey(name)
		if !known {
			return fail(fmt.Sprintf("unknown option %q: want %s", name, listenerKeyNames()))
		}
		if seen[name] {
			return fail(fmt.Sprintf("option %q is given twice", name))
		}
		seen[name] = true
		if why := k.allowedOn(a.Network); why != "" {
			return fail(why)
		}
		if err := k.Set(&opts, value); err != nil {
			return fail(fmt.Sprintf("option %s %q: %v", name, value, err))
		}
	}
	return a, opts, nil
}

// listenerKeyNames lists the keys for an error: "a, b, c or fault-KEY
// (KEY: delay, ...)".
func listenerKeyNames() string {
	var names []string
	for _, k := range listenerKeys {
		if !strings.HasPrefix(k.Name, FaultKeyPrefix) {
			names = append(names, k.Name)
		}
	}
	return strings.Join(names, ", ") + " or " + FaultKeyPrefix + "KEY (KEY: " + strings.Join(FaultKeys(), ", ") + ")"
}

// listenerConf is one listener's resolved settings, which each of its
// connections points to (connGuard.lconf): its name, as the Observer and
// the logs label it, its options, and what follows from them.
type listenerConf struct {
	name string // the listener's address, as net.Listener.Addr().String() gives it
	opts ListenerOptions

	// stages are the stages its connections run, the PROXY stage first
	// when it is on; nil: none. tlsStages are those a TLS connection
	// runs once its handshake is done (the PROXY stage reads before it).
	stages, tlsStages *stages

	// faults is its fault stage, also in stages; nil: no fault.
	faults *faultStage

	// proxyWarns limits the warnings of refused PROXY connections to one
	// a second for each result (proxy.go).
	proxyWarns [len(proxyResultNames)]logLimiter
	// tlsWarns limits the warnings of failed TLS handshakes to one a
	// second for each kind (tls.go).
	tlsWarns [handshakeKinds]logLimiter
}

// newListenerConf resolves the settings of the listener named name,
// served with opts: the Server's stages, then its fault stage if it has
// faults, and the PROXY stage first when it is on.
func (s *Server) newListenerConf(name string, opts ListenerOptions) (*listenerConf, error) {
	lc := &listenerConf{name: name, opts: opts}
	fs, err := s.newFaultStage(opts)
	if err != nil {
		return nil, err
	}
	base := s.stages
	if fs != nil {
		lc.faults = fs
		st := &stages{write: []writeStage{fs}}
		if base != nil {
			st.open = base.open
			st.write = append(slices.Clone(base.write), fs)
		}
		base = st
	}
	lc.stages, lc.tlsStages = base, base
	if opts.ProxyProtocol {
		st := &stages{open: []openStage{proxyStage{}}}
		if base != nil {
			st.open = append(st.open, base.open...)
			st.write = base.write
		}
		lc.stages = st
	}
	return lc, nil
}

// String returns the options as an address query would give them, for
// the start-up log line: "proxy-protocol=on&proxy-timeout=5s", then
// "defer-accept=off" if set, then the listener's own faults
// ("fault-delay=50ms"); "" when the PROXY protocol is off (its other keys
// then do nothing) and no other key is set.
func (o ListenerOptions) String() string {
	var parts []string
	if o.ProxyProtocol {
		parts = append(parts, o.proxyParts()...)
	}
	if o.DisableDeferAccept {
		parts = append(parts, "defer-accept=off")
	}
	if f := o.faultString(); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, "&")
}

// faultString returns the listener's fault keys as an address query gives
// them, in the order of FaultKeys and in the form Settings shows
// ("fault-delay=50ms&fault-duplicate=0.05"), which needs no escaping; a
// key set to turn a fault off shows "0" (a share, "1").
func (o ListenerOptions) faultString() string {
	var parts []string
	for _, k := range faultKeys {
		v, ok := o.Faults[k.name]
		if !ok {
			continue
		}
		var f Faults
		shown := "?" // a value Set refuses, in a ListenerOptions made by hand
		if k.set(&f, v) == nil {
			if shown = k.get(&f); shown == "" {
				shown = "0"
				if k.name == "share" {
					shown = "1"
				}
			}
		}
		parts = append(parts, FaultKeyPrefix+k.name+"="+shown)
	}
	return strings.Join(parts, "&")
}

// proxyParts are the PROXY protocol's keys, for String.
func (o ListenerOptions) proxyParts() []string {
	parts := []string{"proxy-protocol=on"}
	if len(o.ProxyTrusted) > 0 {
		ps := make([]string, len(o.ProxyTrusted))
		for i, p := range o.ProxyTrusted {
			ps[i] = p.String()
		}
		parts = append(parts, "proxy-trusted="+strings.Join(ps, ","))
	}
	parts = append(parts, "proxy-timeout="+o.proxyTimeout().String())
	return parts
}

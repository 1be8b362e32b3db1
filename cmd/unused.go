package cmd

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/echoctl/echoctl/pkg/echo"
)

// warnUnused adds to cfg.Warnings a line for each group of serve's keys
// that are set but do nothing with its addresses: a transport's settings
// without an address of that transport, the PROXY protocol's without a
// listener that reads headers, a fault that needs another one or UDP.
// They are likely not what was meant, yet harmless: a warning, not an
// error, as ncat and socat ignore an option that does not apply.
func (d *decoder) warnUnused(cfg *Config) {
	set := d.changed
	t, f := cfg.Transport, cfg.Faults
	if f == nil {
		f = &echo.Faults{}
	}
	nets := map[string]bool{}
	proxy, faulty := false, f.Enabled()
	for _, s := range cfg.Addrs {
		a, opts, err := echo.ParseListenAddr(s, cfg.Listener)
		if err != nil {
			continue
		}
		nets[a.Network] = true
		proxy = proxy || opts.ProxyProtocol && a.Network != echo.NetworkUDP // UDP reads none
		faulty = warnUnusedQuery(cfg, s, opts, f) || faulty
	}
	type setting struct {
		key string
		set bool
	}
	for _, g := range []struct {
		what     string
		unused   bool // the group does nothing here
		settings []setting
		because  string
	}{
		{"TLS", !nets[echo.NetworkTLS], []setting{{keyTLSCert, t.TLSCert != ""}, {keyTLSKey, t.TLSKey != ""}, {keyTLSSelfSigned, t.TLSSelfSigned}, {keyTLSClientCA, t.TLSClientCA != ""}}, "no --addr is tls://"},
		{"Unix sockets", !nets[echo.NetworkUnix], []setting{{keyUnixMode, set(keyUnixMode)}}, "no --addr is unix://"},
		{"UDP", !nets[echo.NetworkUDP], []setting{{keyUDPAllowLowPorts, t.UDPAllowLowPorts}, {keyUDPRatePerSource, set(keyUDPRatePerSource)}}, "no --addr is udp://"},
		{"PROXY protocol", !proxy, []setting{{keyProxyProtocol, cfg.Listener.ProxyProtocol}, {"proxy-trusted", set("proxy-trusted")}, {"proxy-timeout", set("proxy-timeout")}}, "no --addr reads PROXY headers (proxy-protocol on, on a TCP, TLS or Unix address)"},
		{"TCP", !nets[echo.NetworkTCP] && !nets[echo.NetworkTLS], []setting{{"defer-accept", set("defer-accept")}}, "no --addr is TCP or TLS"},
		{"faults", f.Slice == 0, []setting{{echo.FaultKeyPrefix + "slice-delay", f.SliceDelay > 0}}, "fault-slice is not"},
		{"faults", !faulty, []setting{{echo.FaultKeyPrefix + "share", set(echo.FaultKeyPrefix + "share")}}, "no fault is set"},
	} {
		var keys []string
		for _, s := range g.settings {
			if s.set {
				keys = append(keys, s.key)
			}
		}
		if g.unused && keys != nil {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: %s set, but %s: ignored", g.what, strings.Join(keys, " and "), g.because))
		}
	}
	cfg.Warnings = append(cfg.Warnings, faultsUnused(f, nets)...)
}

// faultsUnused warns of the faults set in f that act on none of the
// networks serve listens on (nets): drop with no udp:// address, rate with
// only udp:// ones; a line for each set of networks they would act on.
func faultsUnused(f *echo.Faults, nets map[string]bool) []string {
	var order []string
	unused := map[string][]string{} // the networks a key acts on -> the keys
	for _, setting := range f.Settings() {
		name, _, _ := strings.Cut(setting, "=")
		k, ok := listenerKeyNamed(echo.FaultKeyPrefix + name)
		if !ok || k.Networks() == nil || slices.ContainsFunc(k.Networks(), func(n string) bool { return nets[n] }) {
			continue
		}
		var schemes []string
		for _, n := range k.Networks() {
			schemes = append(schemes, n+"://")
		}
		where := strings.Join(schemes[:len(schemes)-1], ", ")
		if where != "" {
			where += " or "
		}
		where += schemes[len(schemes)-1]
		if unused[where] == nil {
			order = append(order, where)
		}
		unused[where] = append(unused[where], k.Name)
	}
	var lines []string
	for _, where := range order {
		lines = append(lines, fmt.Sprintf("faults: %s set, but no --addr is %s: ignored", strings.Join(unused[where], " and "), where))
	}
	return lines
}

// listenerKeyNamed returns echo's listener key called name.
func listenerKeyNamed(name string) (echo.ListenerKey, bool) {
	for _, k := range echo.ListenerKeys() {
		if k.Name == name {
			return k, true
		}
	}
	return echo.ListenerKey{}, false
}

// warnUnusedQuery is warnUnused for the options of one address's query
// (tcp://:7?proxy-trusted=10.0.0.0/8), opts being its listener's options
// and server the faults of every listener: an option that does nothing on
// that listener draws a warning naming the address. It reports whether a
// fault is in force on the listener.
func warnUnusedQuery(cfg *Config, addr string, opts echo.ListenerOptions, server *echo.Faults) bool {
	faults := *server
	faults.Rand = nil
	for k, v := range opts.Faults {
		if faults.Set(k, v) != nil {
			return false // refused by the listener's own check
		}
	}
	_, query, ok := strings.Cut(addr, "?")
	if !ok {
		return faults.Enabled()
	}
	given := map[string]bool{}
	for _, pair := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if name, err := url.QueryUnescape(k); err == nil {
			given[name] = true
		}
	}
	for _, w := range []struct {
		key     string
		unused  bool
		because string
	}{
		{"proxy-trusted", !opts.ProxyProtocol, "proxy-protocol is off on this listener"},
		{"proxy-timeout", !opts.ProxyProtocol, "proxy-protocol is off on this listener"},
		{echo.FaultKeyPrefix + "slice-delay", faults.Slice == 0, "fault-slice is not set for this listener"},
		{echo.FaultKeyPrefix + "share", !faults.Enabled(), "no fault is set for this listener"},
	} {
		if given[w.key] && w.unused {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: %s set, but %s: ignored", addr, w.key, w.because))
		}
	}
	return faults.Enabled()
}

// warnUnusedClient is warnUnused for send, ping and bench, which have one
// address: TLS settings when it is not tls://, retries when it is not
// udp://.
func (d *decoder) warnUnusedClient(cfg *Config) {
	a, err := echo.ParseAddr(cfg.Addr)
	if err != nil {
		return
	}
	set := d.changed
	t := cfg.Transport
	var keys []string
	for _, s := range []struct {
		key string
		set bool
	}{{keyTLSCA, t.TLSCA != ""}, {keyTLSServerName, t.TLSServerName != ""}, {keyTLSInsecure, t.TLSInsecure}, {keyTLSCert, t.TLSCert != ""}, {keyTLSKey, t.TLSKey != ""}} {
		if s.set {
			keys = append(keys, s.key)
		}
	}
	if a.Network != echo.NetworkTLS && keys != nil {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("TLS: %s set, but --addr is not tls://: ignored", strings.Join(keys, " and ")))
	}
	if a.Network != echo.NetworkUDP && d.flags.Lookup(keyRetries) != nil && set(keyRetries) {
		cfg.Warnings = append(cfg.Warnings, "UDP: retries set, but --addr is not udp://: ignored")
	}
}

// changed reports whether key is set (by a flag, the environment or the
// config file) to other than its default: a file that spells out the
// defaults, as config/echoctl.yaml does, draws no warning.
func (d *decoder) changed(key string) bool {
	if d.source(key) == "default" {
		return false
	}
	for _, k := range keys {
		if k.name == key {
			return fmt.Sprint(d.v.Get(key)) != fmt.Sprint(k.def)
		}
	}
	return true
}

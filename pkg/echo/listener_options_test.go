package echo_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestParseListenAddr: an address's query overrides the defaults for its
// listener; a bad query is a one-line *AddrError naming the address.
func TestParseListenAddr(t *testing.T) {
	defaults := echo.ListenerOptions{ProxyTimeout: 2 * time.Second}
	ok := []struct {
		in   string
		addr echo.Addr
		want echo.ListenerOptions
	}{
		{"127.0.0.1:9000", echo.Addr{Network: "tcp", Host: "127.0.0.1", Port: 9000}, defaults},
		{"tcp://:9000?proxy-protocol=on&proxy-trusted=10.0.0.0/8,192.0.2.7", echo.Addr{Network: "tcp", Port: 9000},
			echo.ListenerOptions{ProxyProtocol: true, ProxyTimeout: 2 * time.Second, ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}}},
		{":9000?proxy-protocol=on&proxy-timeout=250ms", echo.Addr{Network: "tcp", Port: 9000}, echo.ListenerOptions{ProxyProtocol: true, ProxyTimeout: 250 * time.Millisecond}},
		{"unix:///tmp/e.sock?proxy-protocol=on", echo.Addr{Network: "unix", Path: "/tmp/e.sock"}, echo.ListenerOptions{ProxyProtocol: true, ProxyTimeout: 2 * time.Second}},
		{"tls://[::1]:9443?proxy-protocol=true", echo.Addr{Network: "tls", Host: "::1", Port: 9443}, echo.ListenerOptions{ProxyProtocol: true, ProxyTimeout: 2 * time.Second}},
		{"tcp://:9000?proxy-protocol=off", echo.Addr{Network: "tcp", Port: 9000}, defaults},
		{"tcp://:9000?proxy-trusted=10.0.0.0%2F8", echo.Addr{Network: "tcp", Port: 9000}, echo.ListenerOptions{ProxyTimeout: 2 * time.Second, ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}},
	}
	for _, tc := range ok {
		a, o, err := echo.ParseListenAddr(tc.in, defaults)
		if err != nil || a != tc.addr || o.ProxyProtocol != tc.want.ProxyProtocol || o.ProxyTimeout != tc.want.ProxyTimeout || !slices.Equal(o.ProxyTrusted, tc.want.ProxyTrusted) {
			t.Errorf("ParseListenAddr(%q) = %+v, %+v, %v; want %+v, %+v", tc.in, a, o, err, tc.addr, tc.want)
		}
	}
	bad := []struct{ in, reason string }{
		{"udp://:7?proxy-protocol=on", "PROXY protocol is not supported on udp:// listeners"},
		{"udp://:7?proxy-trusted=10.0.0.0/8", "PROXY protocol is not supported on udp:// listeners"},
		{"tcp://:9000?proxy-protocl=on", `unknown option "proxy-protocl": want proxy-protocol, proxy-trusted, proxy-timeout, defer-accept or fault-KEY (KEY: delay, jitter, rate, slice, slice-delay, close-after, reset-after, stall-after, corrupt, refuse, drop, duplicate, reorder, share)`},
		{"tcp://:9000?proxy-protocol=yes", `option proxy-protocol "yes": want on or off`},
		{"tcp://:9000?proxy-protocol=ON", `option proxy-protocol "ON": want on or off`},
		{"tcp://:9000?proxy-protocol", `option "proxy-protocol": want key=value, such as proxy-protocol=on`},
		{"tcp://:9000?proxy-protocol=on&proxy-protocol=off", `option "proxy-protocol" is given twice`},
		{"tcp://:9000?proxy-trusted=10.0.0.0/33", `option proxy-trusted "10.0.0.0/33": "10.0.0.0/33" is not an IP address or a CIDR prefix such as 10.0.0.0/8`},
		{"tcp://:9000?proxy-timeout=0s", `option proxy-timeout "0s": want a duration such as 5s, more than 0 and at most 10000h`},
		{"tcp://:9000?", `nothing after "?": want per-listener options such as ?proxy-protocol=on`},
		{"tcp://:99999?proxy-protocol=on", `port "99999" out of range: want 0 to 65535`},
	}
	for _, tc := range bad {
		_, _, err := echo.ParseListenAddr(tc.in, defaults)
		var ae *echo.AddrError
		if !errors.As(err, &ae) || ae.Reason != tc.reason || ae.Addr != tc.in || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseListenAddr(%q) = %v; want an *AddrError for it saying %q", tc.in, err, tc.reason)
		}
	}
	// ParseAddr, for clients, takes no query.
	if _, err := echo.ParseAddr("tcp://:9000?proxy-protocol=on"); err == nil {
		t.Errorf("ParseAddr took a query")
	}
}

// TestListenerKeys: every key parses its own default, and the table and
// ListenerOptions agree on the zero value.
func TestListenerKeys(t *testing.T) {
	var names []string
	for _, k := range echo.ListenerKeys() {
		names = append(names, k.Name)
		var def string
		switch d := k.Default.(type) {
		case string:
			def = d
		case time.Duration:
			def = d.String()
		case []string:
			def = strings.Join(d, ",")
		default:
			t.Errorf("%s: default of type %T", k.Name, d)
		}
		var o echo.ListenerOptions
		if err := k.Set(&o, def); err != nil {
			t.Errorf("%s: its default %q: %v", k.Name, def, err)
		}
		if k.Usage == "" {
			t.Errorf("%s has no usage", k.Name)
		}
	}
	want := []string{"proxy-protocol", "proxy-trusted", "proxy-timeout", "defer-accept"}
	for _, f := range echo.FaultKeys() {
		want = append(want, echo.FaultKeyPrefix+f)
	}
	if !slices.Equal(names, want) {
		t.Errorf("keys %q, want %q", names, want)
	}
}

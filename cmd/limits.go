package cmd

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/echoctl/echoctl/pkg/echo"
)

// logMaxBytes decodes log-max-bytes into echo's convention: 0 on the
// command line means no limit, which echo spells -1.
func (d *decoder) logMaxBytes(key string) int {
	n := d.intRange(key, 0, echo.MaxBufferSize)
	if n == 0 {
		return -1
	}
	return n
}

// optionalHostPort decodes an optional host:port; empty means off.
func (d *decoder) optionalHostPort(key string) string {
	s, ok := d.str(key)
	if !ok || s == "" {
		return ""
	}
	if _, _, err := echo.SplitAddr(s); err != nil {
		d.fail(key, s, "must be host:port with a port from 0 to 65535, such as localhost:9100 or :9100 (empty: off)")
	}
	return s
}

// prefixes decodes an access list: CIDR prefixes or bare IP addresses, as
// a list (config file, repeated flag) or one string of items separated by
// commas or spaces (environment, flag).
func (d *decoder) prefixes(key string) []netip.Prefix {
	raw := d.v.Get(key)
	var items []string
	switch x := raw.(type) {
	case nil:
		return nil
	case []string:
		items = x
	case string:
		items = []string{x}
	case []any:
		var ok bool
		if items, ok = stringItems(x); !ok {
			d.fail(key, raw, "must be a list of IP addresses or CIDR prefixes, such as [10.0.0.0/8, 192.0.2.7]")
			return nil
		}
	default:
		d.fail(key, raw, "must be a list of IP addresses or CIDR prefixes, such as [10.0.0.0/8, 192.0.2.7]")
		return nil
	}
	var out []netip.Prefix
	for _, item := range items {
		for _, s := range splitList(item) {
			p, err := echo.ParsePrefix(s)
			if err != nil {
				d.fail(key, raw, fmt.Sprintf("%q is not an IP address or a CIDR prefix such as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7", s))
				return nil
			}
			out = append(out, p)
		}
	}
	return out
}

// splitList splits a list written as one string, on commas and spaces;
// the brackets and quotes of a JSON or YAML array are dropped, so that
// '["10.0.0.0/8", "::1"]' reads as two items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		if f = strings.Trim(f, `[]"'`); f != "" {
			out = append(out, f)
		}
	}
	return out
}

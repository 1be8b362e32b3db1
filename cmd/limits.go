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
	if _, _, err := echo.SplitAddr(s); err != nil || strings.Contains(s, "://") { // HTTP over TCP: no scheme
		d.fail(key, s, "must be host:port with a port from 0 to 65535, such as localhost:9100 or :9100 (empty: off)")
	}
	return s
}

// prefixes decodes an access list: CIDR prefixes or bare IP addresses, as
// a list (config file, repeated flag) or one string of items separated by
// commas or spaces, or a JSON array of strings (environment, flag). It is
// strict, as a list that reads as empty serves every peer: an empty item
// (",", "a,,b"), brackets or quotes that are not a whole JSON array, and
// an allow list set to no address at all ([], ",") are errors.
func (d *decoder) prefixes(key string) []netip.Prefix {
	const listReason = "must be a list of IP addresses or CIDR prefixes, such as [10.0.0.0/8, 192.0.2.7]"
	raw := d.v.Get(key)
	var items []string
	switch x := raw.(type) {
	case nil:
		return nil
	case []string:
		for _, item := range x { // a flag's items, split at commas
			if strings.TrimSpace(item) == "" {
				d.fail(key, raw, "an item is empty (a stray comma?): "+listReason)
				return nil
			}
			items = append(items, strings.Fields(item)...)
		}
	case string:
		var reason string
		if items, reason = splitList(x); reason != "" {
			d.fail(key, raw, reason+": "+listReason)
			return nil
		}
	case []any:
		var ok bool
		if items, ok = stringItems(x); !ok {
			d.fail(key, raw, listReason)
			return nil
		}
	default:
		d.fail(key, raw, listReason)
		return nil
	}
	if len(items) == 0 && key == keyAllow && d.source(key) != "default" {
		d.fail(key, raw, "names no address, and an empty allow list would serve every peer: name the peers to serve, or leave allow unset to serve all")
		return nil
	}
	var out []netip.Prefix
	for _, s := range items {
		p, err := echo.ParsePrefix(s)
		if err != nil {
			d.fail(key, raw, fmt.Sprintf("%q is not an IP address or a CIDR prefix such as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7", s))
			return nil
		}
		out = append(out, p)
	}
	return out
}

// splitList splits a list written as one string: a JSON array of strings,
// or items separated by commas or spaces. It says why when s is neither:
// an empty item between commas, or a JSON array that does not parse.
func splitList(s string) (items []string, reason string) {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") {
		strs, ok := jsonStrings(t)
		if !ok {
			return nil, "starts with [ but is not a JSON array of strings"
		}
		for _, item := range strs {
			if strings.TrimSpace(item) == "" {
				return nil, "an item is empty"
			}
			items = append(items, strings.Fields(item)...)
		}
		return items, ""
	}
	parts := strings.Split(s, ",")
	for _, part := range parts {
		if strings.TrimSpace(part) == "" && len(parts) > 1 {
			return nil, "an item is empty (a stray comma?)"
		}
		items = append(items, strings.Fields(part)...)
	}
	return items, ""
}

package echo

import (
	"context"
	"net/netip"
	"testing"
)

// recordingResolver answers every name with 127.0.0.1 and records the
// names it was asked.
type recordingResolver struct{ asked []string }

func (r *recordingResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.asked = append(r.asked, host)
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// TestResolveLoopbackNames: the names RFC 6761 keeps for the loopback are
// looked up as localhost (from /etc/hosts, never a DNS server); others as
// they are.
func TestResolveLoopbackNames(t *testing.T) {
	for host, want := range map[string]string{
		"localhost": "localhost", "localhost.": "localhost", "LOCALHOST": "localhost",
		"app.localhost": "localhost", "a.b.LocalHost.": "localhost",
		"notlocalhost": "notlocalhost", "localhost.example": "localhost.example", "echo.test": "echo.test",
	} {
		r := &recordingResolver{}
		if _, err := resolve(context.Background(), r, host); err != nil {
			t.Fatal(err)
		}
		if len(r.asked) != 1 || r.asked[0] != want {
			t.Errorf("resolve(%q) asked %q, want %q", host, r.asked, want)
		}
	}
}

package echo_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/echoctl/echoctl/pkg/echo"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    echo.Addr
		wantErr string // the AddrError's Reason
	}{
		{in: "localhost:10000", want: echo.Addr{Network: "tcp", Host: "localhost", Port: 10000}},
		{in: "127.0.0.1:7", want: echo.Addr{Network: "tcp", Host: "127.0.0.1", Port: 7}},
		{in: "[::1]:7", want: echo.Addr{Network: "tcp", Host: "::1", Port: 7}},
		{in: ":10000", want: echo.Addr{Network: "tcp", Port: 10000}},
		{in: ":0", want: echo.Addr{Network: "tcp"}},
		{in: "[fe80::1%eth0]:7", want: echo.Addr{Network: "tcp", Host: "fe80::1%eth0", Port: 7}},
		{in: "tcp://localhost:7", want: echo.Addr{Network: "tcp", Host: "localhost", Port: 7}},
		{in: "TCP://localhost:7", want: echo.Addr{Network: "tcp", Host: "localhost", Port: 7}},
		{in: "udp://127.0.0.1:10000", want: echo.Addr{Network: "udp", Host: "127.0.0.1", Port: 10000}},
		{in: "udp://:7", want: echo.Addr{Network: "udp", Port: 7}},
		{in: "tls://[::1]:443", want: echo.Addr{Network: "tls", Host: "::1", Port: 443}},
		{in: "tls://example.com:65535", want: echo.Addr{Network: "tls", Host: "example.com", Port: 65535}},
		{in: "unix:///run/echo.sock", want: echo.Addr{Network: "unix", Path: "/run/echo.sock"}},
		{in: "unix:///tmp/a b?c#d", want: echo.Addr{Network: "unix", Path: "/tmp/a b?c#d"}},
		// Two spellings of one socket are one address; ".." stays (a link).
		{in: "unix:///tmp//x/./e.sock/", want: echo.Addr{Network: "unix", Path: "/tmp/x/e.sock"}},
		{in: "unix:///tmp/link/../e.sock", want: echo.Addr{Network: "unix", Path: "/tmp/link/../e.sock"}},

		{in: "", wantErr: "missing host:port"},
		{in: "localhost", wantErr: "missing port (want host:port, such as localhost:10000)"},
		{in: "localhost:", wantErr: "missing port (want host:port, such as localhost:10000)"},
		{in: "[::1]", wantErr: "missing port (want host:port, such as localhost:10000)"},
		{in: "[::1:7", wantErr: `missing "]" after the IPv6 address`},
		{in: "::1:7", wantErr: "too many colons: put an IPv6 address in brackets, such as [::1]:10000"},
		{in: "localhost:99999", wantErr: `port "99999" out of range: want 0 to 65535`},
		{in: "localhost:65536", wantErr: `port "65536" out of range: want 0 to 65535`},
		{in: "localhost:echo", wantErr: `port "echo" is not a number from 0 to 65535`},
		{in: "localhost:-1", wantErr: `port "-1" is not a number from 0 to 65535`},
		{in: "sctp://localhost:7", wantErr: `unknown scheme "sctp": want tcp, udp, tls or unix`},
		{in: "http://localhost:7", wantErr: `unknown scheme "http": want tcp, udp, tls or unix`},
		{in: "://localhost:7", wantErr: `missing scheme before "://": want tcp, udp, tls or unix`},
		{in: "udp://", wantErr: "missing host:port"},
		{in: "udp://localhost", wantErr: "missing port (want host:port, such as localhost:10000)"},
		{in: "tcp://localhost:7/path", wantErr: `unexpected "/path" after host:port (a tcp:// address is only host:port)`},
		{in: "tls://localhost:7?x=1", wantErr: `unexpected "?x=1" after host:port (a tls:// address is only host:port)`},
		{in: "tls://user@localhost:7", wantErr: `unexpected user information "user@" (a tls:// address is only host:port)`},
		{in: "a b:7", wantErr: `host "a b" holds characters a host name cannot`},
		{in: "[127.0.0.1]:7", wantErr: `"127.0.0.1" in brackets: brackets are for an IPv6 address, such as [::1]:10000`},
		{in: "tcp://[localhost]:7", wantErr: `"localhost" in brackets: brackets are for an IPv6 address, such as [::1]:10000`},
		{in: strings.Repeat("a", 254) + ":7", wantErr: "host is 254 bytes long: a host name is at most 253"},
		{in: "unix:/tmp/e.sock", wantErr: `a scheme needs "://": want unix:///absolute/path`},
		{in: "TCP:localhost:7", wantErr: `a scheme needs "://": want tcp://host:port`},
		{in: "unix://", wantErr: "missing socket path: want unix:///absolute/path"},
		{in: "unix://run/echo.sock", wantErr: `socket path "run/echo.sock" is not absolute: want unix:///absolute/path (three slashes)`},
		{in: "unix:///" + strings.Repeat("x", 103), wantErr: "socket path is 104 bytes long: the limit is 103"},
		{in: "unix:///a\x00b", wantErr: "socket path contains a NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := echo.ParseAddr(tt.in)
			if tt.wantErr != "" {
				var ae *echo.AddrError
				if !errors.As(err, &ae) {
					t.Fatalf("ParseAddr(%q) = %+v, %v; want an *AddrError", tt.in, got, err)
				}
				if ae.Reason != tt.wantErr || ae.Addr != tt.in {
					t.Errorf("ParseAddr(%q) error: addr %q, reason %q; want reason %q", tt.in, ae.Addr, ae.Reason, tt.wantErr)
				}
				shown := strconv.Quote(tt.in)
				if len(tt.in) > 200 { // an address is cut after 200 bytes
					shown = fmt.Sprintf("%q... (%d more bytes)", tt.in[:200], len(tt.in)-200)
				}
				if want := fmt.Sprintf("echo: address %s: %s", shown, tt.wantErr); err.Error() != want {
					t.Errorf("Error() = %q, want %q", err.Error(), want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAddr(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseAddr(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			again, err := echo.ParseAddr(got.String())
			if err != nil || again != got {
				t.Errorf("ParseAddr(%q.String() = %q) = %+v, %v; want it back", tt.in, got.String(), again, err)
			}
		})
	}
}

func TestAddrString(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:7":          "tcp://localhost:7",
		"[::1]:7":              "tcp://[::1]:7",
		"udp://:7":             "udp://:7",
		"tls://127.0.0.1:443":  "tls://127.0.0.1:443",
		"unix:///run/e.sock":   "unix:///run/e.sock",
		"TLS://localhost:0010": "tls://localhost:10",
	} {
		a, err := echo.ParseAddr(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.String(); got != want {
			t.Errorf("ParseAddr(%q).String() = %q, want %q", in, got, want)
		}
	}
}

// TestSplitAddr checks SplitAddr on host:port and the URL forms: the
// host and port ParseAddr finds, and an *AddrError for what has none.
func TestSplitAddr(t *testing.T) {
	tests := []struct {
		addr    string
		host    string
		port    uint16
		wantErr bool
	}{
		{addr: "localhost:10000", host: "localhost", port: 10000},
		{addr: "127.0.0.1:0", host: "127.0.0.1", port: 0},
		{addr: ":0", host: "", port: 0},
		{addr: "[::1]:65535", host: "::1", port: 65535},
		{addr: "[fe80::1%lo]:7", host: "fe80::1%lo", port: 7},
		{addr: "udp://127.0.0.1:9", host: "127.0.0.1", port: 9},
		{addr: "tls://example.com:443", host: "example.com", port: 443},
		{addr: "unix:///run/e.sock", wantErr: true},
		{addr: "127.0.0.1:65536", wantErr: true},
		{addr: "127.0.0.1:-1", wantErr: true},
		{addr: "127.0.0.1:http", wantErr: true},
		{addr: "127.0.0.1:", wantErr: true},
		{addr: "127.0.0.1", wantErr: true},
		{addr: "::1:80", wantErr: true},
		{addr: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			host, port, err := echo.SplitAddr(tt.addr)
			if tt.wantErr {
				var ae *echo.AddrError
				if !errors.As(err, &ae) || ae.Addr != tt.addr {
					t.Fatalf("SplitAddr(%q) = %q, %d, %v; want an *AddrError for it", tt.addr, host, port, err)
				}
				return
			}
			if err != nil || host != tt.host || port != tt.port {
				t.Errorf("SplitAddr(%q) = %q, %d, %v; want %q, %d", tt.addr, host, port, err, tt.host, tt.port)
			}
		})
	}
}

// FuzzParseAddr checks that ParseAddr never panics, that every error is an
// *AddrError for the input, and that what it accepts round-trips through
// String (a Unix path as samePath writes it).
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"localhost:10000", "[::1]:7", ":0", "udp://:7", "tls://h:1", "unix:///a", "unix:///a//b/./c/", "sctp://x:1", "[::1", "a:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := echo.ParseAddr(s)
		if err != nil {
			var ae *echo.AddrError
			if !errors.As(err, &ae) || ae.Addr != s || ae.Reason == "" {
				t.Fatalf("ParseAddr(%q) error %v is not an *AddrError for it", s, err)
			}
			return
		}
		switch a.Network {
		case echo.NetworkTCP, echo.NetworkUDP, echo.NetworkTLS:
			if a.Path != "" {
				t.Fatalf("ParseAddr(%q) = %+v: a path on a host:port address", s, a)
			}
		case echo.NetworkUnix:
			if !strings.HasPrefix(a.Path, "/") || strings.Contains(a.Path, "//") || a.Host != "" || a.Port != 0 {
				t.Fatalf("ParseAddr(%q) = %+v: a bad unix address", s, a)
			}
		default:
			t.Fatalf("ParseAddr(%q) = %+v: unknown network", s, a)
		}
		again, err := echo.ParseAddr(a.String())
		if err != nil || again != a {
			t.Fatalf("ParseAddr(%q) = %+v; its String %q parses to %+v, %v", s, a, a.String(), again, err)
		}
	})
}

package cmd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/echoctl/echoctl/internal/proxytest"
)

// TestSendProxyProtocol: send --proxy-protocol writes the header asked
// for first, over TCP, TLS (before the handshake) and a Unix socket, as a
// receiver reads it, and the exchange after it goes as without.
func TestSendProxyProtocol(t *testing.T) {
	isolate(t)
	f := newTLSFiles(t)
	cert, err := tls.LoadX509KeyPair(f.serverCert, f.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		opts  proxytest.Options
		args  []string
		check func(t *testing.T, h *proxyproto.Header, srv *proxytest.Server)
	}{
		{"v1 TCP own addresses", proxytest.Options{}, []string{"--proxy-protocol", "v1"}, func(t *testing.T, h *proxyproto.Header, srv *proxytest.Server) {
			if h.Version != 1 || h.TransportProtocol != proxyproto.TCPv4 || h.DestinationAddr.String() != srv.Listener.Addr().String() {
				t.Errorf("header v%d %#x -> %s, want v1 TCP4 -> %s", h.Version, h.TransportProtocol, h.DestinationAddr, srv.Listener.Addr())
			}
		}},
		{"v2 TCP forged with TLVs", proxytest.Options{}, []string{"--proxy-protocol", "v2", "--proxy-source", "203.0.113.7:41000",
			"--proxy-dest", "198.51.100.1:443", "--proxy-tlv", "authority=example.com", "--proxy-tlv", "alpn=h2,http/1.1", "--proxy-tlv", "0xE0=0x00ff"},
			func(t *testing.T, h *proxyproto.Header, _ *proxytest.Server) {
				tlvs, _ := h.TLVs()
				if h.Version != 2 || h.SourceAddr.String() != "203.0.113.7:41000" || h.DestinationAddr.String() != "198.51.100.1:443" ||
					len(tlvs) != 3 || string(tlvs[0].Value) != "example.com" || string(tlvs[1].Value) != "h2,http/1.1" || string(tlvs[2].Value) != "\x00\xff" {
					t.Errorf("header v%d %s -> %s TLVs %q", h.Version, h.SourceAddr, h.DestinationAddr, tlvs)
				}
			}},
		{"v2 TLS header before the handshake", proxytest.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}},
			[]string{"--proxy-protocol", "v2", "--proxy-source", "203.0.113.7:41000", "--tls-ca", f.caFile},
			func(t *testing.T, h *proxyproto.Header, _ *proxytest.Server) {
				if h.Version != 2 || h.Command != proxyproto.PROXY || h.SourceAddr.String() != "203.0.113.7:41000" {
					t.Errorf("header v%d %#x from %s", h.Version, h.Command, h.SourceAddr)
				}
			}},
		{"v1 Unix: UNKNOWN", proxytest.Options{Unix: true}, []string{"--proxy-protocol", "v1"}, func(t *testing.T, h *proxyproto.Header, _ *proxytest.Server) {
			if h.Version != 1 || h.TransportProtocol != proxyproto.UNSPEC {
				t.Errorf("header v%d %#x, want v1 UNKNOWN", h.Version, h.TransportProtocol)
			}
		}},
		{"v2 Unix: LOCAL", proxytest.Options{Unix: true}, []string{"--proxy-protocol", "v2"}, func(t *testing.T, h *proxyproto.Header, _ *proxytest.Server) {
			if h.Version != 2 || h.Command != proxyproto.LOCAL {
				t.Errorf("header v%d command %#x, want v2 LOCAL", h.Version, h.Command)
			}
		}},
		{"v2 Unix with both addresses", proxytest.Options{Unix: true}, []string{"--proxy-protocol", "v2", "--proxy-source", "[2001:db8::7]:1", "--proxy-dest", "[2001:db8::1]:2"},
			func(t *testing.T, h *proxyproto.Header, _ *proxytest.Server) {
				if h.Command != proxyproto.PROXY || h.TransportProtocol != proxyproto.TCPv6 || h.SourceAddr.String() != "[2001:db8::7]:1" {
					t.Errorf("header %#x %#x from %s, want PROXY TCP6 from [2001:db8::7]:1", h.Command, h.TransportProtocol, h.SourceAddr)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Proxy = true
			srv := proxytest.NewServer(t, tt.opts)
			addr := srv.Addr
			if tt.opts.TLS != nil {
				addr = strings.Replace(addr, "127.0.0.1", "localhost", 1)
			}
			r := run(t, context.Background(), append([]string{"send", "--addr", addr, "hello"}, tt.args...)...)
			if r.code != ExitOK || r.stdout != "hello" {
				t.Fatalf("send: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "echo_client: sending PROXY header: ") {
				t.Errorf("no log line for the header:\n%s", r.stderr)
			}
			tt.check(t, srv.Header(t), srv)
		})
	}
}

// TestProxyFlagsRefused: a header that cannot be written is refused with
// one line and exit code 2, by send and bench alike, before connecting.
func TestProxyFlagsRefused(t *testing.T) {
	isolate(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"v1 with a TLV", []string{"--proxy-protocol", "v1", "--proxy-tlv", "alpn=h2"},
			`invalid proxy-tlv "alpn=h2" from flag --proxy-tlv: needs PROXY protocol v2: v1 has no TLVs`},
		{"families differ", []string{"--proxy-protocol", "v2", "--proxy-source", "1.2.3.4:5", "--proxy-dest", "[::1]:6"},
			`invalid proxy-dest "[::1]:6" from flag --proxy-dest: is IPv6 and the source 1.2.3.4:5 is IPv4: both must be of one family`},
		{"bad IP:PORT", []string{"--proxy-protocol", "v2", "--proxy-source", "localhost:5"},
			`invalid proxy-source "localhost:5" from flag --proxy-source: must be IP:PORT`},
		{"unknown TLV name", []string{"--proxy-protocol", "v2", "--proxy-tlv", "colour=blue"},
			`invalid proxy-tlv "colour=blue" from flag --proxy-tlv: type must be a number from 0x01 to 0xFF or one of alpn, authority, crc32c, noop, unique-id, netns, aws-vpce`},
		{"unknown version", []string{"--proxy-protocol", "v3"}, `invalid proxy-protocol "v3" from flag --proxy-protocol: must be v1 or v2`},
		{"upper case version", []string{"--proxy-protocol", "V1"}, `invalid proxy-protocol "V1" from flag --proxy-protocol: must be v1 or v2`},
		{"source without a version", []string{"--proxy-source", "1.2.3.4:5"}, `invalid proxy-source "1.2.3.4:5" from flag --proxy-source: needs a PROXY protocol version, v1 or v2`},
	}
	for _, tt := range tests {
		for _, command := range []string{"send", "bench"} {
			t.Run(tt.name+"/"+command, func(t *testing.T) {
				r := run(t, cancelledContext(), append([]string{command, "--addr", "127.0.0.1:7"}, tt.args...)...)
				if r.code != ExitUsage || r.stderr != "echoctl: "+tt.want+"\n" && !strings.HasPrefix(r.stderr, "echoctl: "+tt.want) {
					t.Errorf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tt.want)
				}
				if strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("stderr is not one line: %q", r.stderr)
				}
			})
		}
	}
	t.Run("environment", func(t *testing.T) {
		t.Setenv("ECHOCTL_PROXY_PROTOCOL", "v2")
		t.Setenv("ECHOCTL_PROXY_TLV", "bogus=1")
		r := run(t, cancelledContext(), "send")
		if r.code != ExitUsage || !strings.Contains(r.stderr, `invalid proxy-tlv "bogus=1" from environment ECHOCTL_PROXY_TLV`) {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	for _, tt := range []struct{ name, addr, flag, want string }{
		{"udp", "udp://127.0.0.1:7", "--proxy-protocol", `invalid proxy-protocol "v2" from flag --proxy-protocol: needs a stream address`},
		{"unix with one address", "unix:///tmp/x.sock", "--proxy-source", `invalid proxy-source "1.2.3.4:5" from flag --proxy-source: a unix:// address has no IP address`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, cancelledContext(), "send", "--addr", tt.addr, "--proxy-protocol", "v2", "--proxy-source", "1.2.3.4:5")
			if r.code != ExitUsage || !strings.HasPrefix(r.stderr, "echoctl: "+tt.want) {
				t.Errorf("exit %d, stderr %q; want %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

// TestBenchProxyProtocol: bench writes one header a connection.
func TestBenchProxyProtocol(t *testing.T) {
	isolate(t)
	srv := proxytest.NewServer(t, proxytest.Options{Proxy: true})
	r := run(t, context.Background(), append([]string{"bench", "--addr", srv.Addr, "--conns", "2", "--proxy-protocol", "v2",
		"--proxy-source", "203.0.113.7:41000", "--proxy-tlv", "aws-vpce=vpce-1", "--json"}, short...)...)
	if r.code != ExitOK {
		t.Fatalf("bench: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `"proxy_protocol": "v2"`) {
		t.Errorf("JSON result does not name the header:\n%s", r.stdout)
	}
	for range 2 {
		h := srv.Header(t)
		tlvs, _ := h.TLVs()
		if h.Version != 2 || h.SourceAddr.String() != "203.0.113.7:41000" || len(tlvs) != 1 || tlvs[0].Type != 0xEA || string(tlvs[0].Value) != "\x01vpce-1" {
			t.Errorf("header v%d from %s TLVs %q", h.Version, h.SourceAddr, tlvs)
		}
	}
	if accepted, headers := srv.Conns(); accepted != 2 || headers != 2 {
		t.Errorf("%d connections, %d headers; want 2 and 2", accepted, headers)
	}
}

// roundRobin starts n greeting servers, each writing "backend-N\n" then
// echoing, behind a round-robin balancer, and returns the balancer;
// broken, if not negative, is a backend that writes a byte after its
// greeting (its echoes differ).
func roundRobin(t *testing.T, n, broken int) *proxytest.Server {
	backends := make([]*proxytest.Server, n)
	for b := range backends {
		greeting := fmt.Sprintf("backend-%d\n", b)
		if b == broken {
			greeting += "X"
		}
		backends[b] = proxytest.NewServer(t, proxytest.Options{Greeting: func(int) string { return greeting }})
	}
	return proxytest.NewRoundRobin(t, backends...)
}

func TestSendGreeting(t *testing.T) {
	isolate(t)
	srv := roundRobin(t, 3, -1)
	r := run(t, context.Background(), "send", "--addr", srv.Addr, "--greeting", "hello")
	if r.code != ExitOK || r.stdout != "hello" || !strings.Contains(r.stderr, "\ngreeting: backend-0\n") {
		t.Fatalf("send --greeting: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Without --greeting the line is an echo that differs.
	r = run(t, context.Background(), "send", "--addr", srv.Addr, "--log-level", "error", "hello")
	if r.code != ExitMismatch {
		t.Errorf("send without --greeting to a greeting server: exit %d, want 3; stderr %q", r.code, r.stderr)
	}
}

// tableRow matches a row of send --count's table: greeting, conns, share
// and errors.
var tableRow = regexp.MustCompile(`(?m)^\s*(\S+)\s+(\d+)\s+([\d.]+%)\s+(\d+)\s+\S+\s+\S+\s+\S+\s+\S+\s*$`)

func tableCounts(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, m := range tableRow.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2] + " " + m[3] + " " + m[4]
	}
	return got
}

func TestSendCount(t *testing.T) {
	isolate(t)
	t.Run("evenly", func(t *testing.T) {
		srv := roundRobin(t, 3, -1)
		r := run(t, context.Background(), "send", "--addr", srv.Addr, "--greeting", "--count", "30", "--log-level", "error")
		want := map[string]string{"backend-0": "10 33.3% 0", "backend-1": "10 33.3% 0", "backend-2": "10 33.3% 0"}
		if got := tableCounts(t, r.stdout); r.code != ExitOK || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("exit %d, rows %v, want %v; stdout:\n%s\nstderr:\n%s", r.code, got, want, r.stdout, r.stderr)
		}
		if !strings.HasSuffix(r.stdout, "30 exchanges: 30 answered, 0 failed\n") || strings.Contains(r.stderr, "greeting") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
	})
	t.Run("each greeting at info level", func(t *testing.T) {
		srv := roundRobin(t, 2, -1)
		r := run(t, context.Background(), "send", "--addr", srv.Addr, "--greeting", "--count", "4")
		if r.code != ExitOK || strings.Count(r.stderr, "greeting: backend-0\n") != 2 || strings.Count(r.stderr, "greeting: backend-1\n") != 2 {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("each greeting as JSON", func(t *testing.T) {
		srv := roundRobin(t, 2, -1)
		r := run(t, context.Background(), "send", "--addr", srv.Addr, "--greeting", "--count", "2", "--log-format", "json")
		greetings := 0
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			var obj map[string]any
			if err := json.Unmarshal([]byte(l), &obj); err != nil {
				t.Fatalf("stderr line %q is not JSON: %v", l, err)
			}
			if g, ok := obj["greeting"].(string); ok && strings.HasPrefix(g, "backend-") && obj["logger"] == "echo_client" {
				greetings++
			}
		}
		if r.code != ExitOK || greetings != 2 {
			t.Fatalf("exit %d, %d greetings; stderr:\n%s", r.code, greetings, r.stderr)
		}
	})
	t.Run("without greeting", func(t *testing.T) {
		srv := proxytest.NewServer(t, proxytest.Options{})
		r := run(t, context.Background(), "send", "--addr", srv.Addr, "--count", "4", "--interval", "1ms", "--log-level", "error")
		if got := tableCounts(t, r.stdout); r.code != ExitOK || got["(none)"] != "4 100.0% 0" {
			t.Fatalf("exit %d, rows %v; stdout:\n%s\nstderr:\n%s", r.code, got, r.stdout, r.stderr)
		}
	})
	t.Run("udp", func(t *testing.T) {
		_, bound := startServeAddrs(t, []string{"udp://127.0.0.1:0"})
		r := run(t, context.Background(), "send", "--addr", bound[0], "--count", "3", "--log-level", "error")
		if got := tableCounts(t, r.stdout); r.code != ExitOK || got["(none)"] != "3 100.0% 0" {
			t.Fatalf("exit %d, rows %v; stdout:\n%s\nstderr:\n%s", r.code, got, r.stdout, r.stderr)
		}
	})
	t.Run("a backend whose echoes differ", func(t *testing.T) {
		srv := roundRobin(t, 3, 2)
		r := run(t, context.Background(), "send", "--addr", srv.Addr, "--greeting", "--count", "9", "--log-level", "error")
		got := tableCounts(t, r.stdout)
		if r.code != ExitMismatch || got["backend-2"] != "3 33.3% 3" || got["backend-0"] != "3 33.3% 0" {
			t.Fatalf("exit %d (want 3), rows %v; stdout:\n%s\nstderr:\n%s", r.code, got, r.stdout, r.stderr)
		}
		if want := "echoctl: send: 3 of 9 exchanges failed (3 with an echo that differs); first mismatch: echo differs from what was sent at byte 0"; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q, want %q", r.stderr, want)
		}
	})
	t.Run("no server", func(t *testing.T) {
		srv := proxytest.NewServer(t, proxytest.Options{})
		addr := srv.Listener.Addr().String()
		srv.Listener.Close()
		r := run(t, context.Background(), "send", "--addr", addr, "--count", "3", "--log-level", "error")
		if r.code != ExitNetwork || !strings.HasSuffix(r.stdout, "3 exchanges: 0 answered, 3 failed (3 before an answer)\n") ||
			!strings.Contains(r.stderr, "send: 3 of 3 exchanges failed; first: connect "+addr+": connection refused") {
			t.Fatalf("exit %d (want 1); stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("no server, interrupted", func(t *testing.T) {
		srv := proxytest.NewServer(t, proxytest.Options{})
		addr := srv.Listener.Addr().String()
		srv.Listener.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond) // Ctrl-C, some exchanges in
		defer cancel()
		r := run(t, ctx, "send", "--addr", addr, "--count", "50", "--interval", "40ms", "--log-level", "error")
		if r.code != ExitNetwork || !regexp.MustCompile(`send: \d+ of \d+ exchanges failed \(interrupted after \d+ of 50 exchanges\); first: connect`).MatchString(r.stderr) {
			t.Fatalf("exit %d (want 1); stderr:\n%s", r.code, r.stderr)
		}
	})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--count", "0"}, "invalid --count 0: must be an integer from 1 to 1000000"},
		{[]string{"--count", "2", "--stdin"}, "send: --count sends the messages again"},
		{[]string{"--interval", "1s"}, "send: --interval is the pause between the exchanges of --count"},
		{[]string{"--interval", "0s"}, "send: --interval is the pause between the exchanges of --count"},
		{[]string{"--count", "2", "--interval", "-1s"}, "invalid --interval -1s"},
		{[]string{"--count", "2", "--interval", "10001h"}, "invalid --interval 10001h: must be a duration from 0 to 10000h"},
		{[]string{"--greeting", "--addr", "udp://127.0.0.1:7"}, "send: --greeting needs a stream address"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, cancelledContext(), append([]string{"send"}, tt.args...)...)
			if r.code != ExitUsage || !strings.HasPrefix(r.stderr, "echoctl: "+tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestBenchGreeting(t *testing.T) {
	isolate(t)
	srv := roundRobin(t, 2, -1)
	r := run(t, context.Background(), append([]string{"bench", "--addr", srv.Addr, "--mode", "connrate", "--greeting", "--json"}, short...)...)
	if r.code != ExitOK || !strings.Contains(r.stdout, `"greetings": {`) || !strings.Contains(r.stdout, `"backend-1": `) {
		t.Fatalf("bench --greeting --json: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, context.Background(), append([]string{"bench", "--addr", srv.Addr, "--conns", "2", "--greeting"}, short...)...)
	if r.code != ExitOK || !regexp.MustCompile(`(?m)^greetings\s+"backend-\d" \d+ \(50\.0%\), "backend-\d" \d+ \(50\.0%\) of \d+ connections, warmup included$`).MatchString(r.stdout) {
		t.Fatalf("bench --greeting: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

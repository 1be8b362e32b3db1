package cmd

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

// testMetricsConfig is the default metrics configuration on 127.0.0.1:0.
func testMetricsConfig() metricsConfig {
	return newMetricsConfig(&Config{MetricsAddr: "127.0.0.1:0"})
}

// startTestMetrics starts a metrics server for mc and closes it when the
// test ends.
func startTestMetrics(t *testing.T, mc metricsConfig, logger zerolog.Logger) *metricsServer {
	t.Helper()
	ms, err := startMetrics(t.Context(), mc, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ms.close(); err != nil {
			t.Errorf("metrics close: %v", err)
		}
	})
	return ms
}

// dialMetrics opens a TCP connection from 127.0.0.1 to the metrics server.
func dialMetrics(t *testing.T, ms *metricsServer) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", ms.addr.String(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends GET path on c and returns the response, or the error of
// reading it within timeout.
func get(t *testing.T, c net.Conn, path string, timeout time.Duration) (*http.Response, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

// status describes a response for a failure message.
func status(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	return resp.Status
}

// TestMetricsDeniedFloodLogged: a denied peer reconnecting to the metrics
// port in a loop gets a line a second, with the count held back, and the
// rest when the port closes: 300 connections made 300 lines.
func TestMetricsDeniedFloodLogged(t *testing.T) {
	const conns = 50
	mc := testMetricsConfig()
	mc.deny = mustPrefixes("127.0.0.0/8")
	var logs syncBuffer
	ms, err := startMetrics(t.Context(), mc, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	for range conns {
		c := dialMetrics(t, ms)
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a denied peer read a byte")
		}
		c.Close()
	}
	if err := ms.close(); err != nil {
		t.Fatal(err)
	}
	lines, counted := 0, 0
	for l := range strings.Lines(logs.String()) {
		var e struct {
			Message  string `json:"message"`
			Unlogged int    `json:"refused_unlogged"`
		}
		if json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		switch {
		case strings.Contains(e.Message, "refused: address not allowed"):
			lines++
			counted += 1 + e.Unlogged
		case strings.Contains(e.Message, "more connections to the metrics port refused"):
			counted += e.Unlogged
		}
	}
	if counted != conns || lines > conns/2 {
		t.Errorf("%d refusals counted in %d lines, want %d in a line a second:\n%s", counted, lines, conns, logs.String())
	}
}

// TestMetricsAccessList: the metrics port applies serve's --allow and
// --deny: a refused peer's connection is closed with no HTTP answer at all
// (it used to get 200 OK), and logged as echo logs its refusals.
func TestMetricsAccessList(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []netip.Prefix
		served      bool
	}{
		{name: "no list", served: true},
		{name: "deny loopback", deny: mustPrefixes("127.0.0.0/8")},
		{name: "allow another address only", allow: mustPrefixes("127.0.0.2/32")},
		{name: "allow this address", allow: mustPrefixes("127.0.0.1/32"), served: true},
		{name: "deny wins over allow", allow: mustPrefixes("127.0.0.0/8"), deny: mustPrefixes("127.0.0.1/32")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := testMetricsConfig()
			mc.allow, mc.deny = tt.allow, tt.deny
			var logs syncBuffer
			ms := startTestMetrics(t, mc, zerolog.New(&logs))
			resp, err := get(t, dialMetrics(t, ms), "/healthz", waitTimeout)
			if tt.served {
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /healthz from an admitted peer: %s, %v; want 200", status(resp), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("GET /healthz from a refused peer answered %s; want the connection closed unanswered", resp.Status)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("a refused peer's connection was left open: %v", err)
			}
			if !strings.Contains(logs.String(), ` refused: address not allowed"`) ||
				!strings.Contains(logs.String(), `"reason":"denied"`) {
				t.Errorf("refusal not logged with reason denied:\n%s", logs.String())
			}
		})
	}
}

// TestServeMetricsDenied: serve gives the metrics port its --deny list.
func TestServeMetricsDenied(t *testing.T) {
	isolate(t)
	p := startServe(t, "--metrics-addr", "127.0.0.1:0", "--deny", "127.0.0.0/8")
	var addr string
	for _, line := range jsonLines(t, p.stderr.String()) {
		if line["logger"] == "metrics" && line["addr"] != nil {
			addr, _ = line["addr"].(string)
		}
	}
	if addr == "" {
		t.Fatalf("no metrics address logged:\n%s", p.stderr)
	}
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp, err := get(t, c, "/metrics", waitTimeout); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("GET /metrics from a denied peer: %s, %v; want the connection closed unanswered", status(resp), err)
	}
}

// TestMetricsConnLimit: connections that send nothing cannot take more
// than the metrics server's own limit of descriptors; past it a scrape
// waits in the backlog until one closes, and the echo port serves all
// along. Without the limit every idle connection was accepted (1,100 of
// them used up the descriptors and starved the echo port).
func TestMetricsConnLimit(t *testing.T) {
	mc := testMetricsConfig()
	mc.maxConns = 3
	mc.readHeaderTimeout = time.Minute // so that only the limit frees places
	ms := startTestMetrics(t, mc, zerolog.Nop())
	es := echotest.NewServer(t, nil)

	var idle []net.Conn
	for range mc.maxConns + 3 {
		idle = append(idle, dialMetrics(t, ms))
	}
	var echoed strings.Builder
	if _, err := es.Client().Send(t.Context(), [][]byte{[]byte("still echoing")}, &echoed); err != nil || echoed.String() != "still echoing" {
		t.Fatalf("echo while the metrics port is full: %q, %v", echoed.String(), err)
	}
	scrape := dialMetrics(t, ms)
	const held = 300 * time.Millisecond
	if resp, err := get(t, scrape, "/healthz", held); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("with %d idle connections open, GET /healthz: %s, %v; want no answer for %v (the limit is %d)",
			len(idle), status(resp), err, held, mc.maxConns)
	}
	for _, c := range idle {
		c.Close()
	}
	// The request already written is answered once a place frees up.
	scrape.SetDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(bufio.NewReader(scrape), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz once the idle connections closed: %s, %v; want 200", status(resp), err)
	}
	resp.Body.Close()
}

// TestMetricsIdleConnsTimeOut: the server closes connections that send
// no request, and idle keep-alive ones, so that even more of them than the
// limit only delay a scrape.
func TestMetricsIdleConnsTimeOut(t *testing.T) {
	mc := testMetricsConfig()
	mc.maxConns = 2
	mc.readHeaderTimeout = 100 * time.Millisecond
	mc.idleTimeout = 100 * time.Millisecond
	ms := startTestMetrics(t, mc, zerolog.Nop())

	var idle []net.Conn
	for range mc.maxConns + 2 {
		idle = append(idle, dialMetrics(t, ms))
	}
	keepAlive := dialMetrics(t, ms)
	if resp, err := get(t, keepAlive, "/healthz", waitTimeout); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz behind %d idle connections: %s, %v; want 200 once they time out", len(idle), status(resp), err)
	}
	for i, c := range append(idle, keepAlive) {
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("idle connection %d: read %d bytes, %v; want it closed by the server", i, n, err)
		}
	}
}

// TestMetricsMaxHeaderBytes: a request with oversized headers is refused
// (431) rather than buffered up to net/http's default of 1 MiB.
func TestMetricsMaxHeaderBytes(t *testing.T) {
	ms := startTestMetrics(t, testMetricsConfig(), zerolog.Nop())
	c := dialMetrics(t, ms)
	c.SetDeadline(time.Now().Add(waitTimeout))
	big := strings.Repeat("a", 64<<10)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: "+big+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("GET with a 64 KiB header: %s, %v; want 431", status(resp), err)
	}
	resp.Body.Close()
}

// TestMetricsServerBounds: every net/http bound is set on the metrics
// server, from the defaults.
func TestMetricsServerBounds(t *testing.T) {
	ms := startTestMetrics(t, testMetricsConfig(), zerolog.Nop())
	h := ms.http
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": h.ReadHeaderTimeout, "ReadTimeout": h.ReadTimeout,
		"WriteTimeout": h.WriteTimeout, "IdleTimeout": h.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s = %v, want a limit", name, d)
		}
	}
	if h.MaxHeaderBytes != metricsMaxHeaderBytes {
		t.Errorf("MaxHeaderBytes = %d, want %d", h.MaxHeaderBytes, metricsMaxHeaderBytes)
	}
}

// TestMetricsLoopbackNames: the metrics address takes the names RFC 6761
// keeps for the loopback as serve's addresses do, looked up as localhost.
func TestMetricsLoopbackNames(t *testing.T) {
	for _, host := range []string{"localhost.", "metrics.localhost"} {
		ms := startTestMetrics(t, newMetricsConfig(&Config{MetricsAddr: net.JoinHostPort(host, "0")}), zerolog.Nop())
		if ap, err := netip.ParseAddrPort(ms.addr.String()); err != nil || !ap.Addr().IsLoopback() {
			t.Errorf("%s: listening on %v, want a loopback address", host, ms.addr)
		}
	}
}

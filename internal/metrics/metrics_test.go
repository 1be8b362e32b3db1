package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/echoctl/echoctl/internal/metrics"
	"github.com/echoctl/echoctl/pkg/echo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthAndReadiness(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{Version: "1.2.3", Commit: "abc", Date: "today"})
	h := m.Handler()
	steps := []struct {
		name      string
		do        func()
		readyCode int
	}{
		{"before any listener", func() {}, http.StatusServiceUnavailable},
		{"one listener", func() { m.Listening("127.0.0.1:1", true) }, http.StatusOK},
		{"two listeners", func() { m.Listening("[::1]:1", true) }, http.StatusOK},
		{"one stopped", func() { m.Listening("[::1]:1", false) }, http.StatusOK},
		{"draining", m.Drain, http.StatusServiceUnavailable},
		{"all stopped", func() { m.Listening("127.0.0.1:1", false) }, http.StatusServiceUnavailable},
	}
	for _, st := range steps {
		st.do()
		if code, body := get(t, h, "/readyz"); code != st.readyCode {
			t.Errorf("%s: /readyz = %d %q, want %d", st.name, code, body, st.readyCode)
		}
		if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
			t.Errorf("%s: /healthz = %d, want 200", st.name, code)
		}
	}
}

func TestObserverCounts(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{})
	const l = "127.0.0.1:10000"
	m.Listening(l, true)
	c1 := m.ConnAccepted(l, nil)
	c2 := m.ConnAccepted(l, nil)
	c1.Received(100)
	c1.Sent(100, time.Millisecond)
	c1.Received(50)
	c1.Sent(20, -1) // failed partway: no latency
	c1.Closed(echo.CloseReset)
	c2.Closed(echo.CloseDenied)
	m.AcceptError(l, errors.New("accept: too many open files"))

	want := `
# HELP echoctl_bytes_received_total Bytes read from peers.
# TYPE echoctl_bytes_received_total counter
echoctl_bytes_received_total{listener="127.0.0.1:10000"} 150
# HELP echoctl_bytes_sent_total Bytes written back to peers.
# TYPE echoctl_bytes_sent_total counter
echoctl_bytes_sent_total{listener="127.0.0.1:10000"} 120
# HELP echoctl_connections_active Connections open now, including refused ones until they are closed.
# TYPE echoctl_connections_active gauge
echoctl_connections_active{listener="127.0.0.1:10000"} 0
# HELP echoctl_connections_total Connections accepted, including those then refused by the access list or a limit.
# TYPE echoctl_connections_total counter
echoctl_connections_total{listener="127.0.0.1:10000"} 2
# HELP echoctl_accept_errors_total Accept errors that were retried after a pause, such as running out of file descriptors.
# TYPE echoctl_accept_errors_total counter
echoctl_accept_errors_total{listener="127.0.0.1:10000"} 1
# HELP echoctl_listener_accepting 1 while the listener accepts connections, 0 once it has stopped.
# TYPE echoctl_listener_accepting gauge
echoctl_listener_accepting{listener="127.0.0.1:10000"} 1
`
	names := []string{"echoctl_bytes_received_total", "echoctl_bytes_sent_total", "echoctl_connections_active",
		"echoctl_connections_total", "echoctl_accept_errors_total", "echoctl_listener_accepting"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	for _, r := range echo.CloseReasons() {
		want := 0.0
		if r == echo.CloseReset || r == echo.CloseDenied {
			want = 1
		}
		got, err := gatherValue(m, "echoctl_connections_closed_total", map[string]string{"listener": l, "reason": r.String()})
		if err != nil || got != want {
			t.Errorf("echoctl_connections_closed_total{reason=%q} = %v, %v; want %v (every reason present from the start)", r, got, err, want)
		}
	}
	count, err := testutil.GatherAndCount(m.Registry(), "echoctl_echo_latency_seconds")
	if err != nil || count != 1 {
		t.Errorf("echoctl_echo_latency_seconds series: %d, %v; want 1", count, err)
	}
}

// gatherValue returns the value of the counter or gauge name with labels.
func gatherValue(m *metrics.Metrics, name string, labels map[string]string) (float64, error) {
	mfs, err := m.Registry().Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			switch {
			case mt.Counter != nil:
				return mt.Counter.GetValue(), nil
			case mt.Gauge != nil:
				return mt.Gauge.GetValue(), nil
			}
		}
	}
	return 0, errors.New("no such series")
}

func TestMetricsEndpoint(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{Version: "1.2.3", Commit: "abc", Date: "today"})
	m.ConnAccepted("127.0.0.1:1", nil).Sent(5, 3*time.Microsecond)
	code, body := get(t, m.Handler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`echoctl_build_info{commit="abc",date="today",goversion="go`,
		`echoctl_connections_total{listener="127.0.0.1:1"} 1`,
		`echoctl_echo_latency_seconds_bucket{listener="127.0.0.1:1",le="1e-05"} 1`,
		`echoctl_connections_closed_total{listener="127.0.0.1:1",reason="write-timeout"} 0`,
		"go_goroutines ",
		"process_open_fds ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestWithServer runs an echo.Server with Metrics as its Observer and
// checks the counters after real connections.
func TestWithServer(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{})
	srv := &echo.Server{Observer: m, Deny: nil}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	msg := []byte("This is the message. It will be sent in parts.")
	for range 3 {
		cl := &echo.Client{Addr: l, Timeout: 5 * time.Second}
		if _, err := cl.Send(t.Context(), [][]byte{msg}, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if !m.Ready() {
		t.Error("not ready while serving")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, echo.ErrServerClosed) {
		t.Fatal(err)
	}
	if m.Ready() {
		t.Error("ready after Shutdown")
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"echoctl_connections_total", map[string]string{"listener": l}, 3},
		{"echoctl_connections_active", map[string]string{"listener": l}, 0},
		{"echoctl_connections_closed_total", map[string]string{"listener": l, "reason": "eof"}, 3},
		{"echoctl_bytes_received_total", map[string]string{"listener": l}, float64(3 * len(msg))},
		{"echoctl_bytes_sent_total", map[string]string{"listener": l}, float64(3 * len(msg))},
		{"echoctl_listener_accepting", map[string]string{"listener": l}, 0},
	}
	for _, c := range checks {
		if got, err := gatherValue(m, c.name, c.labels); err != nil || got != c.want {
			t.Errorf("%s%v = %v, %v; want %v", c.name, c.labels, got, err, c.want)
		}
	}
}

// TestUDPDropped checks echoctl_udp_dropped_total: every reason at zero
// once a UDP socket serves, and the drops of a real server counted under
// theirs.
func TestUDPDropped(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{})
	srv := &echo.Server{Observer: m, UDPRatePerSource: &echo.PacketRate{Datagrams: 1}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := pc.LocalAddr().String()
	done := make(chan error, 1)
	go func() { done <- srv.ServePacket(pc) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})

	c, err := net.Dial("udp", l)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One datagram a second with a burst of one: the first is answered,
	// the two right after it dropped.
	for range 3 {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 8)); err != nil {
		t.Fatalf("first datagram not answered: %v", err)
	}
	limited := map[string]string{"listener": "udp://" + l, "reason": echo.DropRateLimit.String()}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := gatherValue(m, "echoctl_udp_dropped_total", limited)
		if got == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("echoctl_udp_dropped_total%v = %v; want 2", limited, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, r := range echo.DropReasons() {
		if r == echo.DropRateLimit {
			continue
		}
		got, err := gatherValue(m, "echoctl_udp_dropped_total", map[string]string{"listener": "udp://" + l, "reason": r.String()})
		if err != nil || got != 0 {
			t.Errorf("echoctl_udp_dropped_total{reason=%q} = %v, %v; want 0 (every reason present from the start)", r, got, err)
		}
	}
}

// TestProxyHeaders checks echoctl_proxy_headers_total: a real server with
// the PROXY protocol on counts a v1 header served, a v2 LOCAL health
// check, and a client that sent none, under their version and result,
// and closes the last as "proxy".
func TestProxyHeaders(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{})
	srv := &echo.Server{Observer: m, ListenerOptions: echo.ListenerOptions{ProxyProtocol: true}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	local := "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
	for _, send := range []string{"PROXY TCP4 203.0.113.7 10.0.0.5 41000 9000\r\nhi", local + "hi", "hi"} {
		c, err := net.Dial("tcp", l)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(send))
		c.(*net.TCPConn).CloseWrite()
		io.ReadAll(c)
		c.Close()
	}
	checks := []struct {
		name   string
		labels map[string]string
	}{
		{"echoctl_proxy_headers_total", map[string]string{"version": "v1", "result": "proxy"}},
		{"echoctl_proxy_headers_total", map[string]string{"version": "v2", "result": "local"}},
		{"echoctl_proxy_headers_total", map[string]string{"version": "none", "result": "absent"}},
		{"echoctl_connections_closed_total", map[string]string{"listener": l, "reason": "proxy"}},
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range checks {
		for {
			got, err := gatherValue(m, c.name, c.labels)
			if err == nil && got == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s%v = %v, %v; want 1", c.name, c.labels, got, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestFaultsCounted checks echoctl_faults_total: no series while no fault
// has acted, then one count per connection and kind, from a real server
// whose faults delay and reset every connection.
func TestFaultsCounted(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{})
	srv := &echo.Server{Observer: m, Faults: &echo.Faults{Delay: time.Millisecond, ResetAfter: echo.FaultAfter{Bytes: 2}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	if n, err := testutil.GatherAndCount(m.Registry(), "echoctl_faults_total"); err != nil || n != 0 {
		t.Fatalf("echoctl_faults_total series before any fault: %d, %v; want none", n, err)
	}
	for range 2 {
		c, err := net.Dial("tcp", l)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("abcd"))
		io.ReadAll(c) // two bytes, then the reset
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		reset, _ := gatherValue(m, "echoctl_faults_total", map[string]string{"listener": l, "kind": "reset"})
		delay, _ := gatherValue(m, "echoctl_faults_total", map[string]string{"listener": l, "kind": "delay"})
		closed, _ := gatherValue(m, "echoctl_connections_closed_total", map[string]string{"listener": l, "reason": "fault"})
		if reset == 2 && delay == 2 && closed == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("faults_total reset %v, delay %v; closed_total{reason=fault} %v; want 2 each", reset, delay, closed)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUDPFaultsCounted checks echoctl_faults_total on a udp:// listener:
// one count per datagram a fault acted on.
func TestUDPFaultsCounted(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{})
	srv := &echo.Server{Observer: m, Faults: &echo.Faults{Drop: 1}, UDPRatePerSource: &echo.PacketRate{}}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := pc.LocalAddr().String()
	done := make(chan error, 1)
	go func() { done <- srv.ServePacket(pc) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	c, err := net.Dial("udp", l)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.Write([]byte("dropped"))
		if drop, _ := gatherValue(m, "echoctl_faults_total", map[string]string{"listener": "udp://" + l, "kind": "drop"}); drop >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("echoctl_faults_total{kind=drop} below 3 after 5s of datagrams dropped by a fault")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTCPAndUDPOnOnePortApart: a TCP and a UDP listener on the same
// address and port have series of their own, the UDP one named as --addr
// takes it (udp://HOST:PORT); their bytes were added up in one series.
func TestTCPAndUDPOnOnePortApart(t *testing.T) {
	m := metrics.New(metrics.BuildInfo{})
	srv := &echo.Server{Observer: m, UDPRatePerSource: &echo.PacketRate{}}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		ln.Close()
		t.Skipf("UDP port %s taken: %v", addr, err)
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	go func() { served <- srv.ServePacket(pc) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
		<-served
	})

	tcp := &echo.Client{Addr: addr, Timeout: 5 * time.Second}
	if _, err := tcp.Send(t.Context(), [][]byte{[]byte("0123456789")}, nil); err != nil { // 10 bytes
		t.Fatal(err)
	}
	udp := &echo.Client{Addr: "udp://" + addr, Timeout: 5 * time.Second}
	if _, err := udp.Send(t.Context(), [][]byte{[]byte("abc")}, nil); err != nil { // 3 bytes
		t.Fatal(err)
	}
	// Bytes are counted as they are read, before their echo goes back.
	tb, _ := gatherValue(m, "echoctl_bytes_received_total", map[string]string{"listener": addr})
	ub, _ := gatherValue(m, "echoctl_bytes_received_total", map[string]string{"listener": "udp://" + addr})
	if tb != 10 || ub != 3 {
		t.Fatalf("bytes received: %v on %s, %v on udp://%s; want 10 and 3", tb, addr, ub, addr)
	}
}

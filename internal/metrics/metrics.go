// Package metrics exports an echo.Server's state to Prometheus: it
// implements echo.Observer with github.com/prometheus/client_golang and
// serves /metrics, /healthz and /readyz. docs/metrics.md lists the metrics.
package metrics

import (
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/echoctl/echoctl/pkg/echo"
)

// namespace prefixes every echoctl metric.
const namespace = "echoctl"

// LatencyBuckets are the upper bounds, in seconds, of
// echoctl_echo_latency_seconds: from 10µs (an echo on loopback) to 10s (a
// peer that reads very slowly).
var LatencyBuckets = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// BuildInfo describes the running binary for echoctl_build_info.
type BuildInfo struct {
	Version, Commit, Date string
}

// Metrics holds echoctl's collectors in a registry of its own. It is an
// echo.Observer: set it as Server.Observer. Create it with New; its
// methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	active       *prometheus.GaugeVec
	accepted     *prometheus.CounterVec
	closed       *prometheus.CounterVec
	received     *prometheus.CounterVec
	sent         *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	acceptErrors *prometheus.CounterVec
	accepting    *prometheus.GaugeVec
	udpDropped   *prometheus.CounterVec
	proxyHeaders *prometheus.CounterVec
	faults       *prometheus.CounterVec

	mu        sync.Mutex
	listeners map[string]*listenerMetrics
	packets   map[string]*packetMetrics
	open      atomic.Int64 // listeners accepting now
	draining  atomic.Bool
}

var _ echo.PacketObserver = (*Metrics)(nil)

// New returns Metrics registered, with the Go runtime and process
// collectors and echoctl_build_info, in a new registry.
func New(build BuildInfo) *Metrics {
	label := []string{"listener"}
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		listeners: make(map[string]*listenerMetrics),
		packets:   make(map[string]*packetMetrics),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections_active",
			Help: "Connections open now, including refused ones until they are closed.",
		}, label),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "connections_total",
			Help: "Connections accepted, including those then refused by the access list or a limit.",
		}, label),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "connections_closed_total",
			Help: "Connections closed, by reason: eof, idle, write-timeout, reset, limit, denied, shutdown, error, proxy or fault.",
		}, []string{"listener", "reason"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bytes_received_total",
			Help: "Bytes read from peers.",
		}, label),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bytes_sent_total",
			Help: "Bytes written back to peers.",
		}, label),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "echo_latency_seconds",
			Help:    "Time from reading a chunk to having written it back, per chunk.",
			Buckets: LatencyBuckets,
		}, label),
		acceptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "accept_errors_total",
			Help: "Accept errors that were retried after a pause, such as running out of file descriptors.",
		}, label),
		accepting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "listener_accepting",
			Help: "1 while the listener accepts connections, 0 once it has stopped.",
		}, label),
		udpDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "udp_dropped_total",
			Help: "UDP datagrams dropped unanswered, by reason: denied, port-zero, own-address, reflector-port, low-port, rate-limit, rate-table-full or fault-queue-full.",
		}, []string{"listener", "reason"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "faults_total",
			Help: "Connections (on UDP, datagrams) a fault (serve --fault-*) acted on, by kind: delay, rate, slice, close, reset, stall, corrupt, refuse, drop, duplicate or reorder.",
		}, []string{"listener", "kind"}),
	}
	m.proxyHeaders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "proxy_headers_total",
		Help: "PROXY protocol headers on the listeners that require one, by version (v1, v2, or none when none was recognised) and result: proxy, local, absent, malformed, unsupported, timeout or untrusted.",
	}, []string{"version", "result"})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels describe the running binary.",
		ConstLabels: prometheus.Labels{
			"version": build.Version, "commit": build.Commit, "date": build.Date,
			"goversion": runtime.Version(),
		},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		m.active, m.accepted, m.closed, m.received, m.sent, m.latency,
		m.acceptErrors, m.accepting, m.udpDropped, m.proxyHeaders, m.faults, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry that holds every metric, to register more
// collectors or gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// listenerMetrics are the collectors of one listener, resolved once so
// that the per-chunk calls are a few atomic operations. It is the
// echo.ConnObserver of every connection on that listener.
type listenerMetrics struct {
	active, accepting prometheus.Gauge
	accepted          prometheus.Counter
	received, sent    prometheus.Counter
	latency           prometheus.Observer
	acceptErrors      prometheus.Counter
	closed            []prometheus.Counter // by echo.CloseReason
	proxyHeaders      *prometheus.CounterVec

	// faults counts the faults by kind; each series is made when a fault
	// first acts on the listener, so that a server without faults shows
	// none.
	name   string
	faults *prometheus.CounterVec
}

var _ echo.ProxyObserver = (*listenerMetrics)(nil)

// ProxyHeader implements echo.ProxyObserver: echoctl_proxy_headers_total.
func (l *listenerMetrics) ProxyHeader(version int, result echo.ProxyResult) {
	v := "none"
	if version > 0 {
		v = "v" + strconv.Itoa(version)
	}
	l.proxyHeaders.WithLabelValues(v, result.String()).Inc()
}

var _ echo.FaultObserver = (*listenerMetrics)(nil)

// Fault implements echo.FaultObserver.
func (l *listenerMetrics) Fault(kind echo.FaultKind) {
	l.faults.WithLabelValues(l.name, kind.String()).Inc()
}

// listener returns the collectors for name, creating them, with every
// close reason at zero, on first use.
func (m *Metrics) listener(name string) *listenerMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.listeners[name]; ok {
		return l
	}
	l := &listenerMetrics{
		active:       m.active.WithLabelValues(name),
		accepting:    m.accepting.WithLabelValues(name),
		accepted:     m.accepted.WithLabelValues(name),
		received:     m.received.WithLabelValues(name),
		sent:         m.sent.WithLabelValues(name),
		latency:      m.latency.WithLabelValues(name),
		acceptErrors: m.acceptErrors.WithLabelValues(name),
		proxyHeaders: m.proxyHeaders,
		name:         name,
		faults:       m.faults,
	}
	for _, r := range echo.CloseReasons() {
		l.closed = append(l.closed, m.closed.WithLabelValues(name, r.String()))
	}
	m.listeners[name] = l
	return l
}

// Listening implements echo.Observer.
func (m *Metrics) Listening(listener string, accepting bool) {
	l := m.listener(listener)
	if accepting {
		l.accepting.Set(1)
		m.open.Add(1)
	} else {
		l.accepting.Set(0)
		m.open.Add(-1)
	}
}

// AcceptError implements echo.Observer.
func (m *Metrics) AcceptError(listener string, _ error) {
	m.listener(listener).acceptErrors.Inc()
}

// ConnAccepted implements echo.Observer.
func (m *Metrics) ConnAccepted(listener string, _ net.Addr) echo.ConnObserver {
	l := m.listener(listener)
	l.accepted.Inc()
	l.active.Inc()
	return l
}

// PacketListener implements echo.PacketObserver: datagrams count in the
// same byte and latency metrics as connections, under their socket, and
// the datagrams dropped unanswered in echoctl_udp_dropped_total, whose
// series for every reason exist at zero from here on.
func (m *Metrics) PacketListener(listener string) echo.ConnObserver {
	l := m.listener(listener)
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.packets[listener]; ok {
		return p
	}
	p := &packetMetrics{listenerMetrics: l}
	for _, r := range echo.DropReasons() {
		p.dropped = append(p.dropped, m.udpDropped.WithLabelValues(listener, r.String()))
	}
	m.packets[listener] = p
	return p
}

// packetMetrics are the collectors of one UDP socket: its listener's, and
// its drops by echo.DropReason. It is an echo.PacketDropObserver.
type packetMetrics struct {
	*listenerMetrics
	dropped []prometheus.Counter // by echo.DropReason
}

var _ echo.PacketDropObserver = (*packetMetrics)(nil)

// Dropped implements echo.PacketDropObserver.
func (p *packetMetrics) Dropped(reason echo.DropReason) {
	if int(reason) < len(p.dropped) {
		p.dropped[reason].Inc()
	}
}

// Received implements echo.ConnObserver.
func (l *listenerMetrics) Received(n int) { l.received.Add(float64(n)) }

// Sent implements echo.ConnObserver.
func (l *listenerMetrics) Sent(n int, latency time.Duration) {
	l.sent.Add(float64(n))
	if latency >= 0 {
		l.latency.Observe(latency.Seconds())
	}
}

// Closed implements echo.ConnObserver.
func (l *listenerMetrics) Closed(reason echo.CloseReason) {
	if int(reason) < len(l.closed) {
		l.closed[reason].Inc()
	} else {
		l.closed[echo.CloseError].Inc()
	}
	l.active.Dec()
}

// Drain marks the server as draining: /readyz answers 503 from now on,
// even before the listeners have closed.
func (m *Metrics) Drain() { m.draining.Store(true) }

// Ready reports whether the server is ready for traffic: at least one
// listener accepts and the server is not draining.
func (m *Metrics) Ready() bool { return !m.draining.Load() && m.open.Load() > 0 }

// Handler serves /metrics (the Prometheus text format), /healthz (200
// while the process is alive) and /readyz (200 while listeners accept,
// 503 before they start and while draining).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case m.draining.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("draining\n"))
			return
		case !m.Ready():
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("no listener is accepting\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("echoctl: /metrics /healthz /readyz\n"))
	})
	return mux
}

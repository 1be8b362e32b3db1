package cmd

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/netutil"

	"github.com/echoctl/echoctl/internal/metrics"
	"github.com/echoctl/echoctl/pkg/echo"
)

// metricsShutdownTimeout bounds how long the metrics server waits for
// scrapes in progress when serve exits.
const metricsShutdownTimeout = time.Second

// The metrics server's own bounds. --max-conns, --max-conns-per-ip and the
// echo timeouts count only echo connections, so without these a client
// that opens connections to the metrics port and sends nothing would hold
// descriptors until the process has none left for the echo listeners.
// Past metricsMaxConns, new connections wait in the kernel's listen backlog
// (holding no descriptor of ours) until one closes.
const (
	metricsMaxConns          = 16
	metricsReadHeaderTimeout = 5 * time.Second
	metricsReadTimeout       = 10 * time.Second
	metricsWriteTimeout      = 30 * time.Second
	metricsIdleTimeout       = 30 * time.Second
	metricsMaxHeaderBytes    = 8 << 10
)

// metricsConfig is what startMetrics needs: the address (empty: metrics
// off), serve's access list, and the server's bounds, which tests shrink.
type metricsConfig struct {
	addr        string
	allow, deny []netip.Prefix

	maxConns                                                  int
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration
	maxHeaderBytes                                            int
}

// newMetricsConfig returns the metrics configuration of cfg: its
// metrics-addr, allow and deny, with the default bounds.
func newMetricsConfig(cfg *Config) metricsConfig {
	return metricsConfig{
		addr:              cfg.MetricsAddr,
		allow:             cfg.Allow,
		deny:              cfg.Deny,
		maxConns:          metricsMaxConns,
		readHeaderTimeout: metricsReadHeaderTimeout,
		readTimeout:       metricsReadTimeout,
		writeTimeout:      metricsWriteTimeout,
		idleTimeout:       metricsIdleTimeout,
		maxHeaderBytes:    metricsMaxHeaderBytes,
	}
}

// A metricsServer serves Prometheus metrics, /healthz and /readyz on
// --metrics-addr while serve runs.
type metricsServer struct {
	metrics *metrics.Metrics
	http    *http.Server
	addr    net.Addr // the address listened on
	done    chan error
}

// startMetrics listens on mc.addr and serves the metrics of a new
// metrics.Metrics in the background, to the peers serve's access list
// admits, at most mc.maxConns at a time. It returns nil when mc.addr is
// empty (metrics are off).
func startMetrics(ctx context.Context, mc metricsConfig, logger zerolog.Logger) (*metricsServer, error) {
	if mc.addr == "" {
		return nil, nil
	}
	addr := mc.addr
	if host, port, err := net.SplitHostPort(addr); err == nil {
		addr = net.JoinHostPort(echo.LoopbackName(host), port) // as serve's addresses: never localhost. to DNS
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", mc.addr, err)
	}
	m := metrics.New(metrics.BuildInfo{Version: version, Commit: commit, Date: date})
	ms := &metricsServer{
		metrics: m,
		http: &http.Server{
			Handler:           m.Handler(),
			ReadHeaderTimeout: mc.readHeaderTimeout,
			ReadTimeout:       mc.readTimeout,
			WriteTimeout:      mc.writeTimeout,
			IdleTimeout:       mc.idleTimeout,
			MaxHeaderBytes:    mc.maxHeaderBytes,
			ErrorLog:          log.New(httpLogWriter{logger}, "", 0),
		},
		addr: ln.Addr(),
		done: make(chan error, 1),
	}
	// The access list is checked inside the limit, so that refused peers
	// never hold one of its places.
	ln = netutil.LimitListener(&accessListener{Listener: ln, allow: mc.allow, deny: mc.deny, logger: logger}, mc.maxConns)
	go func() { ms.done <- ms.http.Serve(ln) }()
	return ms, nil
}

// An accessListener applies serve's access list (--allow, --deny) to the
// metrics port with echo's own rule: a refused peer's connection is closed
// as soon as it is accepted, before any byte is read, so that it gets no
// HTTP answer. It is logged at info, as echo logs its refusals.
type accessListener struct {
	net.Listener
	allow, deny []netip.Prefix
	logger      zerolog.Logger

	// A refusal is logged at most once every refusalLogInterval, with
	// the count held back since: a denied peer reconnecting in a loop
	// must not fill the log. Close logs what is still held back.
	mu   sync.Mutex
	last time.Time
	held int
}

// refusalLogInterval is the least time between two refusal lines of the
// metrics port, as the echo port's.
const refusalLogInterval = time.Second

// Accept returns the next connection from an admitted peer.
func (l *accessListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if echo.PeerAllowed(l.allow, l.deny, c.RemoteAddr()) {
			return c, nil
		}
		l.mu.Lock()
		now := time.Now()
		if !l.last.IsZero() && now.Sub(l.last) < refusalLogInterval {
			l.held++
			l.mu.Unlock()
			c.Close()
			continue
		}
		held := l.held
		l.last, l.held = now, 0
		l.mu.Unlock()
		peer := c.RemoteAddr().String()
		msg := fmt.Sprintf("connection from %s refused: address not allowed", peer)
		if held > 0 {
			msg += fmt.Sprintf(" (%d more refused since the last report)", held)
		}
		l.logger.Info().Str("logger", "metrics").Str("peer", peer).Str("reason", echo.CloseDenied.String()).
			Int("refused_unlogged", held).Msg(msg)
		c.Close() // after the line: a peer that sees its close finds it logged
	}
}

// Close closes the listener, and logs the refusals still held back.
func (l *accessListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	held := l.held
	l.held = 0
	l.mu.Unlock()
	if held > 0 {
		l.logger.Info().Str("logger", "metrics").Str("reason", echo.CloseDenied.String()).Int("refused_unlogged", held).
			Msgf("%d more connections to the metrics port refused since the last report", held)
	}
	return err
}

// logServing logs where the metrics are served. serve calls it once the
// echo listeners are bound too, so that a start that fails (the echo
// address taken, perhaps by the metrics listener itself) logs no
// "serving metrics" line.
func (ms *metricsServer) logServing(logger zerolog.Logger) {
	if ms != nil {
		logger.Info().Str("logger", "metrics").Str("addr", ms.addr.String()).
			Msgf("serving metrics on http://%s/metrics", ms.addr)
	}
}

// observer returns what the echo server tells of its connections, to
// count them: nil when metrics are off.
func (ms *metricsServer) observer() echo.Observer {
	if ms == nil {
		return nil
	}
	return ms.metrics
}

// drain makes /readyz answer 503, before the echo server starts its
// graceful shutdown.
func (ms *metricsServer) drain() {
	if ms != nil {
		ms.metrics.Drain()
	}
}

// close stops the metrics server, letting scrapes in progress finish for
// up to metricsShutdownTimeout.
func (ms *metricsServer) close() error {
	if ms == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
	defer cancel()
	if err := ms.http.Shutdown(ctx); err != nil {
		ms.http.Close()
	}
	if err := <-ms.done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// httpLogWriter sends net/http's own error log lines (such as accept
// errors) to the injected logger, at warn, as the "metrics" logger.
type httpLogWriter struct{ logger zerolog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	w.logger.Warn().Str("logger", "metrics").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

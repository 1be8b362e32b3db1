package cmd

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/internal/metrics"
	"github.com/echoctl/echoctl/pkg/echo"
)

// metricsShutdownTimeout bounds how long the metrics server waits for
// scrapes in progress when serve exits.
const metricsShutdownTimeout = time.Second

// applyLimits copies serve's limits, timeouts, access list and log line
// length from cfg to srv, and attaches ms (which may be nil) as its
// Observer.
func applyLimits(srv *echo.Server, cfg *Config, ms *metricsServer) {
	srv.MaxConns = cfg.MaxConns
	srv.MaxConnsPerIP = cfg.MaxConnsPerIP
	srv.IdleTimeout = cfg.IdleTimeout
	srv.WriteTimeout = cfg.WriteTimeout
	srv.Allow = cfg.Allow
	srv.Deny = cfg.Deny
	srv.LogMaxBytes = cfg.LogMaxBytes
	if ms != nil {
		srv.Observer = ms.metrics
	}
}

// A metricsServer serves Prometheus metrics, /healthz and /readyz on
// --metrics-addr while serve runs.
type metricsServer struct {
	metrics *metrics.Metrics
	http    *http.Server
	done    chan error
}

// startMetrics listens on addr and serves the metrics of a new
// metrics.Metrics in the background. It returns nil when addr is empty
// (metrics are off).
func startMetrics(ctx context.Context, addr string, logger zerolog.Logger) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	m := metrics.New(metrics.BuildInfo{Version: version, Commit: commit, Date: date})
	ms := &metricsServer{
		metrics: m,
		http: &http.Server{
			Handler:           m.Handler(),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       time.Minute,
			ErrorLog:          log.New(httpLogWriter{logger}, "", 0),
		},
		done: make(chan error, 1),
	}
	logger.Info().Str("logger", "metrics").Str("addr", ln.Addr().String()).
		Msgf("serving metrics on http://%s/metrics", ln.Addr())
	go func() { ms.done <- ms.http.Serve(ln) }()
	return ms, nil
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

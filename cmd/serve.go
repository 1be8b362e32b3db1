package cmd

import (
	"context"
	"errors"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/echoctl/echoctl/internal/logging"
	"github.com/echoctl/echoctl/internal/tlsconfig"
	"github.com/echoctl/echoctl/pkg/echo"
)

func newServeCmd(opts *globalOptions, streams Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the echo server",
		Long: `Run the echo server: every byte read on a connection is written back to it.

The server listens on --addr; a host name is listened on at every address it
resolves to (localhost: 127.0.0.1 and ::1 where both are listed). Each
connection reads, writes what it read back, and waits for the write to finish
before reading again; it closes when the peer half-closes. With -v (data
logged) each read is up to --buffer-size bytes, as in the seed's transcript;
otherwise up to 64 KiB, which moves the same bytes with fewer system calls.

--addr may be repeated to serve several addresses in one process: host:port
or tcp://host:port (TCP), udp://host:port (every datagram is sent back, RFC
862), tls://host:port (with --tls-cert and --tls-key, or --tls-self-signed;
SIGHUP reloads the certificate files) and unix:///path (a Unix socket). See
docs/udp.md, docs/tls.md and docs/unix.md.

An address may end in per-listener options, which override the flags of the
same names for it alone: tcp://:9000?proxy-protocol=on&proxy-trusted=10.0.0.0/8
reads a PROXY protocol header (v1 or v2, as HAProxy and AWS NLB send it) from
each connection on that address only (docs/usage.md, docs/load-balancers.md).

--busy-poll D keeps each event loop looking for work for D after it last
found some, instead of sleeping at once: a message that comes within D is
echoed without waking a sleeping thread, which takes tens of microseconds on
virtual machines, at the price of CPU (a loop under steady traffic stays busy).
It applies to what the event loops serve: plain TCP and Unix sockets on
Linux (docs/usage.md, docs/architecture.md).

--fault-* make the server misbehave on purpose (delays, pacing, slices,
closes, resets, stalls, flipped bits: docs/faults.md); with a config file,
SIGHUP reloads them for new connections.

SIGINT or SIGTERM stops accepting and lets open connections finish for up to
--shutdown-timeout, then closes the rest; the exit code is then 0.

` + exitCodesHelp,
		Example: `  echoctl serve
  echoctl serve --addr :10000 -v
  ECHOCTL_ADDR='[::1]:7' echoctl serve --log-format json
  echoctl serve --addr tcp://:7 --addr udp://:7 --addr unix:///tmp/echo.sock
  echoctl serve --addr tls://localhost:10443 --tls-cert cert.pem --tls-key key.pem
  echoctl serve --addr 'tcp://:9000?proxy-protocol=on' --addr :10000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The server's log is written out at most logging.FlushEvery
			// after each line, a few writes a second rather than two per
			// connection, and in full before serve returns.
			logs := logging.NewBuffered(streams.Err, logging.FlushEvery)
			defer logs.Close()
			// A log whose reader has gone (serve 2>&1 | head) is a write
			// error, which stops the log, not a SIGPIPE, which would end
			// the server and its connections (exit 141).
			signal.Ignore(syscall.SIGPIPE)
			// From the first SIGINT or SIGTERM on, each line starts a
			// flush at once: a second one, which ends the process, finds
			// next to nothing held back.
			defer context.AfterFunc(cmd.Context(), func() { logs.Close() })()
			cfg, logger, err := opts.setup(cmd, logs)
			if err != nil {
				return err
			}
			// SIGHUP reloads the faults from the same file (faults.go).
			reload := func() (*Config, error) { return loadConfig(cmd.Flags(), cfg.File) }
			return asRuntimeError(runServe(cmd.Context(), cfg, logger, reload))
		},
	}
	addKeyFlags(cmd.Flags(), cmdServe)
	return cmd
}

// newServer builds the echo.Server that cfg describes: its addresses,
// buffer size, limits, timeouts, access list, log line length, busy
// polling, UDP guard, Unix socket mode, greeting and, when an address is
// tls://, TLS, whose certificate it returns (else nil). observer, if not
// nil, is told of its connections. TLS settings without a tls:// address
// are warned about.
func newServer(cfg *Config, logger zerolog.Logger, observer echo.Observer) (*echo.Server, *tlsconfig.Server, error) {
	t := cfg.Transport
	rate := t.UDPRatePerSource
	srv := &echo.Server{
		Addr:             cfg.Addr,
		BufferSize:       cfg.BufferSize,
		Logger:           logger,
		MaxConns:         cfg.MaxConns,
		MaxConnsPerIP:    cfg.MaxConnsPerIP,
		IdleTimeout:      cfg.IdleTimeout,
		WriteTimeout:     cfg.WriteTimeout,
		Allow:            cfg.Allow,
		Deny:             cfg.Deny,
		Observer:         observer,
		LogMaxBytes:      cfg.LogMaxBytes,
		BusyPoll:         cfg.BusyPoll,
		UnixMode:         t.UnixMode,
		UDPAllowLowPorts: t.UDPAllowLowPorts,
		UDPRatePerSource: &rate,
		ListenerOptions:  cfg.Listener,
		Greeting:         cfg.Greeting,
	}
	if cfg.Faults.Enabled() || cfg.File != "" {
		// With a config file, SIGHUP may set faults later (watchFaults);
		// else nil: a server without faults pays nothing for them.
		srv.Faults = cfg.Faults
	}
	certs, err := serverCertificate(t, cfg.Addrs, logger)
	if err != nil {
		return nil, nil, err
	}
	if certs != nil {
		srv.TLSConfig = certs.Config()
	}
	return srv, certs, nil
}

// hupReloads reports whether SIGHUP reloads something for serve: the
// faults of a config file, or TLS files of a tls:// address.
func hupReloads(cfg *Config) bool {
	t := cfg.Transport
	return cfg.File != "" || usesTLS(cfg, true) && (t.TLSCert != "" || t.TLSClientCA != "")
}

// parseServeAddr parses one of serve's addresses, which may end in a
// query of per-listener options (echo.ParseListenAddr).
func parseServeAddr(s string) (echo.Addr, error) {
	a, _, err := echo.ParseListenAddr(s, echo.ListenerOptions{})
	return a, err
}

// runServe serves until ctx is cancelled, then shuts down gracefully. A
// ctx cancelled while it starts (SIGINT or SIGTERM) stops it as cleanly:
// nil, not the error of a lookup or a bind that the signal cut short.
func runServe(ctx context.Context, cfg *Config, logger zerolog.Logger, reload func() (*Config, error)) error {
	// SIGHUP reloads what a config file or TLS files set (watchFaults,
	// watchReload): one that comes while the sockets are bound, or while
	// the server stops, is ignored rather than ending the process.
	hup := hupReloads(cfg)
	if hup {
		signal.Ignore(syscall.SIGHUP)
	}
	stopped := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ms, err := startMetrics(ctx, newMetricsConfig(cfg), logger)
	if err != nil {
		return stopped(err)
	}
	defer ms.close()
	if hup {
		defer signal.Ignore(syscall.SIGHUP) // once the watchers below stop
	}
	srv, certs, err := newServer(cfg, logger, ms.observer())
	if err != nil {
		return err
	}
	bound, err := srv.Bind(ctx, cfg.Addrs...)
	if err != nil {
		return stopped(err)
	}
	// Only now that every socket is bound: a start that fails logs no
	// certificate and no metrics address.
	logTLS(certs, cfg.Transport, logger)
	logFaults(cfg.Faults, logger)
	ms.logServing(logger)
	// The SIGHUP watchers start before serving does: a SIGHUP sent once
	// the start-up line is out is a reload, not ignored.
	defer watchReload(certs, logger)()            // SIGHUP reloads the TLS certificate files, if any
	defer watchFaults(srv, cfg, reload, logger)() // and the faults, from a config file
	served := make(chan error, 1)
	go func() { served <- srv.ServeBound(bound) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	ms.drain()
	// A shutdown timeout of 0 means no limit: wait for every connection.
	shutdownCtx, cancel := context.WithCancel(context.Background())
	if cfg.ShutdownTimeout > 0 {
		shutdownCtx, cancel = context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	}
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		logger.Warn().Str("logger", "main").Dur("shutdown_timeout", cfg.ShutdownTimeout).
			Msg("shutdown timeout reached: closed the connections still open")
	}
	if err := <-served; !errors.Is(err, echo.ErrServerClosed) {
		return err
	}
	return nil
}

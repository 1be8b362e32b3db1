package cmd

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echoctl/echoctl/pkg/echo"
)

func addAddrFlags(fs *pflag.FlagSet) {
	fs.String(keyAddr, echo.DefaultAddr, "address as host:port; a host name is used at every address it resolves to")
	fs.Int(keyBufferSize, echo.DefaultBufferSize, "most bytes read at once (1 to 16777216)")
}

func newServeCmd(opts *globalOptions, streams Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the echo server",
		Long: `Run the echo server: every byte read on a connection is written back to it.

The server listens on --addr; a host name is listened on at every address it
resolves to (localhost: 127.0.0.1 and ::1 where both are listed). Each
connection reads up to --buffer-size bytes, writes them back, and waits for
the write to finish before reading again; it closes when the peer half-closes.

SIGINT or SIGTERM stops accepting and lets open connections finish for up to
--shutdown-timeout, then closes the rest; the exit code is then 0.`,
		Example: `  echoctl serve
  echoctl serve --addr :10000 -v
  ECHOCTL_ADDR='[::1]:7' echoctl serve --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := opts.setup(cmd, streams.Err)
			if err != nil {
				return err
			}
			return asRuntimeError(runServe(cmd.Context(), cfg, logger))
		},
	}
	addAddrFlags(cmd.Flags())
	cmd.Flags().Duration(keyShutdownTimeout, 5*time.Second, "how long open connections may finish after SIGINT/SIGTERM")
	return cmd
}

// runServe serves until ctx is cancelled, then shuts down gracefully.
func runServe(ctx context.Context, cfg *Config, logger zerolog.Logger) error {
	srv := &echo.Server{Addr: cfg.Addr, BufferSize: cfg.BufferSize, Logger: logger}
	lns, err := srv.Listen(ctx)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeListeners(lns) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
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

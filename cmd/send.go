package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/echoctl/echoctl/pkg/echo"
)

type sendOptions struct {
	stdin bool
}

func newSendCmd(opts *globalOptions, streams Streams) *cobra.Command {
	sendOpts := &sendOptions{}
	cmd := &cobra.Command{
		Use:   "send [MESSAGE ...]",
		Short: "Send messages to an echo server and verify the echo",
		Long: `Connect to --addr, send each MESSAGE with its own write, half-close, then
read the echo until the server closes. The echo goes to standard output
exactly as received; logs go to standard error.

Without MESSAGE arguments the messages key of the configuration is sent (by
default the seed's three parts). --stdin streams standard input instead, of
any size and binary safe, verifying the echo as it arrives.

--addr may be a URL: tls://host:port (TLS; the half-close is a close_notify),
unix:///path (a Unix socket) or udp://host:port, where each message is one
datagram whose echo is awaited up to --timeout, resent up to --retries times;
--stdin needs a stream address. See docs/udp.md, docs/tls.md, docs/unix.md.

` + exitCodesHelp,
		Example: `  echoctl send
  echoctl send "hello" " world" --addr 127.0.0.1:10000
  head -c 10M /dev/urandom | echoctl send --stdin > /dev/null
  echoctl send --addr udp://127.0.0.1:10000 "one datagram" "another"
  echoctl send --addr tls://localhost:10443 --tls-ca ca.pem
  echoctl send --addr unix:///tmp/echo.sock`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if sendOpts.stdin && len(args) > 0 {
				return usageError{errors.New("send: give MESSAGE arguments or --stdin, not both")}
			}
			cfg, logger, err := opts.setup(cmd, streams.Err)
			if err != nil {
				return err
			}
			var input io.Reader
			if sendOpts.stdin {
				if a, err := echo.ParseAddr(cfg.Addr); err == nil && a.Network == echo.NetworkUDP {
					return usageError{errors.New("send: --stdin needs a stream address (tcp, tls or unix): over udp:// each message is one datagram")}
				}
				input = streams.In
			}
			messages := cfg.Messages
			if len(args) > 0 {
				messages = args
			}
			client, err := newClient(cfg, logger)
			if err != nil {
				return asRuntimeError(err)
			}
			return asRuntimeError(runSend(cmd.Context(), client, messages, input, streams.Out))
		},
	}
	addKeyFlags(cmd.Flags(), cmdSend)
	cmd.Flags().BoolVar(&sendOpts.stdin, "stdin", false, "send standard input instead of messages")
	return cmd
}

// newClient builds the echo.Client that cfg describes: its address,
// buffer size, timeout and log line length, its retries for a udp://
// address and its TLS configuration for a tls:// one.
func newClient(cfg *Config, logger zerolog.Logger) (*echo.Client, error) {
	client := &echo.Client{
		Addr:        cfg.Addr,
		BufferSize:  cfg.BufferSize,
		Timeout:     cfg.Timeout,
		Logger:      logger,
		LogMaxBytes: cfg.LogMaxBytes,
		Retries:     cfg.Transport.Retries,
	}
	if client.Retries == 0 {
		client.Retries = -1 // echo.Client's zero means the default
	}
	a, err := echo.ParseAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if a.Network == echo.NetworkTLS {
		if client.TLSConfig, err = clientTLS(cfg.Transport, logger); err != nil {
			return nil, err
		}
	}
	return client, nil
}

// runSend sends messages, or input when it is not nil, with client, and
// writes the echo to out.
func runSend(ctx context.Context, client *echo.Client, messages []string, input io.Reader, out io.Writer) error {
	if input != nil {
		_, err := client.SendStream(ctx, input, out)
		return outputError(err)
	}
	parts := make([][]byte, len(messages))
	for i, m := range messages {
		parts[i] = []byte(m)
	}
	_, err := client.Send(ctx, parts, out)
	return outputError(err)
}

// outputError says "write standard output: CAUSE" for an echo that could
// not be written to out (such as a full disk), which the client reports
// as an *echo.OutputError; other errors are returned as they are.
func outputError(err error) error {
	var oe *echo.OutputError
	if !errors.As(err, &oe) {
		return err
	}
	cause := oe.Err
	var pe *os.PathError // "write /dev/stdout: ": the path says less than the name
	if errors.As(cause, &pe) {
		cause = pe.Err
	}
	return fmt.Errorf("write standard output: %w", cause)
}

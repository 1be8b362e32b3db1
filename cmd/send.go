package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echoctl/echoctl/pkg/echo"
)

type sendOptions struct {
	stdin    bool
	greeting bool
	count    int
	interval time.Duration
}

// maxCount bounds --count.
const maxCount = 1_000_000

// check refuses flags that do not go together, before anything is sent.
func (o *sendOptions) check(fs *pflag.FlagSet, args []string) error {
	switch {
	case o.stdin && len(args) > 0:
		return errors.New("send: give MESSAGE arguments or --stdin, not both")
	case fs.Changed("count") && (o.count < 1 || o.count > maxCount):
		return fmt.Errorf("invalid --count %d: must be an integer from 1 to %d", o.count, maxCount)
	case fs.Changed("count") && o.stdin:
		return errors.New("send: --count sends the messages again on each connection; standard input can be read once: give MESSAGE arguments, not --stdin")
	case o.interval < 0 || o.interval > echo.MaxTimeout:
		return fmt.Errorf("invalid --interval %s: must be a duration from 0 to %s, such as 100ms", echo.FormatDuration(o.interval), echo.FormatDuration(echo.MaxTimeout))
	case fs.Changed("interval") && !fs.Changed("count"):
		return errors.New("send: --interval is the pause between the exchanges of --count")
	}
	return nil
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

--proxy-protocol v1|v2 writes a PROXY protocol header first on the
connection, as a load balancer does, so that a backend that expects one
(nginx proxy_protocol, HAProxy accept-proxy, echoctl) can be tested without
one in front. --greeting reads the line a server writes first (echoctl serve
--greeting) and prints it on standard error as "greeting: LINE" before
sending, then verifies the echo after the line. --count N makes N
exchanges, each on a new connection, --interval apart, and prints on
standard output, instead of the echoes, a table of the greetings (backends)
that answered: connections, share, errors, and connect and round-trip
latency p50/p99 (each greeting is printed too at --log-level info and
below). See docs/usage.md.

` + exitCodesHelp,
		Example: `  echoctl send
  echoctl send "hello" " world" --addr 127.0.0.1:10000
  head -c 10M /dev/urandom | echoctl send --stdin > /dev/null
  echoctl send --addr udp://127.0.0.1:10000 "one datagram" "another"
  echoctl send --addr tls://localhost:10443 --tls-ca ca.pem
  echoctl send --addr unix:///tmp/echo.sock
  echoctl send --proxy-protocol v2 --proxy-source 203.0.113.7:41000 --addr 127.0.0.1:10000
  echoctl send --count 300 --greeting --addr lb.example:9000`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sendOpts.check(cmd.Flags(), args); err != nil {
				return usageError{err}
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
			if sendOpts.greeting {
				if a, err := echo.ParseAddr(cfg.Addr); err == nil && a.Network == echo.NetworkUDP {
					return usageError{errors.New("send: --greeting needs a stream address (tcp, tls or unix): a server never greets over udp://")}
				}
			}
			client, err := newClient(cfg, logger)
			if err != nil {
				return asRuntimeError(err)
			}
			client.Greeting = sendOpts.greeting
			if cmd.Flags().Changed("count") {
				return asRuntimeError(runSendCount(cmd.Context(), client, messages, sendOpts.count, sendOpts.interval,
					cfg.LogLevel <= zerolog.InfoLevel, streams.Out, greeter(cfg.LogFormat, logger, streams.Err)))
			}
			return asRuntimeError(runSend(cmd.Context(), client, messages, input, streams.Out, greeter(cfg.LogFormat, logger, streams.Err)))
		},
	}
	addKeyFlags(cmd.Flags(), cmdSend)
	cmd.Flags().BoolVar(&sendOpts.stdin, "stdin", false, "send standard input instead of messages")
	cmd.Flags().BoolVar(&sendOpts.greeting, "greeting", false, `read the line the server writes first (serve --greeting), print it on standard error as "greeting: LINE", then verify the echo after it`)
	cmd.Flags().IntVar(&sendOpts.count, "count", 0, "make this many exchanges (1 to 1000000), each on a new connection, and print a table of the greetings (backends) that answered instead of the echoes (default: one exchange, its echo printed)")
	cmd.Flags().DurationVar(&sendOpts.interval, "interval", 0, "with --count: pause between exchanges")
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
		Proxy:       cfg.Transport.Proxy,
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
// writes the echo to out; a greeting goes to greet as soon as it is read.
func runSend(ctx context.Context, client *echo.Client, messages []string, input io.Reader, out io.Writer, greet func(string)) error {
	client.Trace = &echo.ClientTrace{Greeted: greet}
	var err error
	if input != nil {
		_, err = client.SendStream(ctx, input, out)
	} else {
		_, err = client.Send(ctx, byteParts(messages), out)
	}
	return outputError(err)
}

// byteParts returns the messages as the client sends them.
func byteParts(messages []string) [][]byte {
	parts := make([][]byte, len(messages))
	for i, m := range messages {
		parts[i] = []byte(m)
	}
	return parts
}

// greeter returns what shows a server's greeting on standard error, w:
// `greeting: LINE`, the line quoted if it holds bytes a terminal would
// act on; with --log-format json, a JSON object as every other line there,
// whatever the log level (the greeting is the command's output).
func greeter(logFormat string, logger zerolog.Logger, w io.Writer) func(line string) {
	if logFormat == "json" {
		return func(line string) {
			logger.Log().Str("logger", "echo_client").Str("greeting", line).Msg("greeting: " + showGreeting(line))
		}
	}
	return func(line string) { fmt.Fprintf(w, "greeting: %s\n", showGreeting(line)) }
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

package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/ping"
)

// pingOptions are the ping command's own flags; --addr, --timeout and the
// TLS flags go through the configuration like send's.
type pingOptions struct {
	count       int
	deadline    time.Duration
	interval    time.Duration
	size        int
	reuse       bool
	source      string
	resolveEach bool
	json        bool
}

func (o *pingOptions) addFlags(fs *pflag.FlagSet) {
	fs.IntVarP(&o.count, "count", "c", 0, "probes to send, then stop (0: until Ctrl-C or --deadline), as ping's -c")
	fs.DurationVarP(&o.deadline, "deadline", "w", 0, "stop after this long, as ping's -w (0: no deadline); with it, --count is the replies to wait for, as ping's -c with -w, and a deadline that comes first fails the run")
	fs.DurationVarP(&o.interval, "interval", "i", ping.DefaultInterval, "time from one probe's start to the next's, as ping's -i; probes go one at a time, as tcping's: one slower than this delays the next")
	fs.IntVarP(&o.size, "size", "s", ping.DefaultSize, fmt.Sprintf("bytes each probe sends and expects back (%d to %d; over UDP at most one datagram)", ping.MinSize, ping.MaxSize))
	fs.BoolVar(&o.reuse, "reuse", false, "tcp, tls, unix: send every probe on one connection (made again after a failed probe) instead of connecting for each")
	fs.StringVarP(&o.source, "source", "I", "", "send the probes from this local IP address, as ping's -I")
	fs.BoolVar(&o.resolveEach, "resolve-each", false, "resolve the host name before every probe (for a name whose addresses change), not once at start")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per probe as it ends, then one for the summary")
}

// config returns the run the flags describe with client.
func (o *pingOptions) config(cfg *Config, client *echo.Client) (ping.Config, error) {
	if cfg.Timeout <= 0 {
		return ping.Config{}, fmt.Errorf("invalid timeout %v from %s: ping needs a bound on each probe, more than 0", cfg.Timeout, cfg.source(keyTimeout))
	}
	pc := ping.Config{
		Client:      client,
		Count:       o.count,
		Deadline:    o.deadline,
		Interval:    o.interval,
		Size:        o.size,
		Timeout:     cfg.Timeout,
		Reuse:       o.reuse,
		ResolveEach: o.resolveEach,
	}
	if o.source != "" {
		ip, err := netip.ParseAddr(o.source)
		if err != nil || ip.Zone() != "" {
			return ping.Config{}, fmt.Errorf("invalid --source %q: must be an IP address of this machine, such as 127.0.0.1 or ::1", o.source)
		}
		pc.Source = ip
	}
	// --interval 0 means at once, which ping.Config reads as its default.
	if o.interval == 0 {
		pc.Interval = time.Nanosecond
	}
	if o.size == 0 { // ping.Config's default, not a size to take
		return ping.Config{}, fmt.Errorf("invalid --size 0: must be %d to %d bytes", ping.MinSize, ping.MaxSize)
	}
	var ce *ping.ConfigError
	if err := pc.Validate(); errors.As(err, &ce) {
		return ping.Config{}, fmt.Errorf("invalid --%s %s: %s", ce.Field, ce.Value, ce.Reason)
	} else if err != nil {
		return ping.Config{}, err
	}
	return pc, nil
}

// errProbesFailed and errDeadlineCut are ping's exit status 1: some
// probe got no whole echo, or --deadline came before --count replies.
var (
	errProbesFailed = errors.New("ping: not every probe was answered")
	errDeadlineCut  = errors.New("ping: the deadline came before --count replies")
)

func newPingCmd(opts *globalOptions, streams Streams) *cobra.Command {
	pingOpts := &pingOptions{}
	cmd := &cobra.Command{
		Use:   "ping",
		Short: "Probe an echo server as ping does: one echo every --interval, then a summary",
		Long: `Probe the echo server at --addr as ping(8) probes a host and tcping a port:
every --interval one probe, until --count probes, --deadline or Ctrl-C, then
a summary.

Over TCP, TLS and Unix sockets a probe connects (a new connection for each
probe, or one for all with --reuse), writes --size bytes and reads them back,
verifying every byte; it reports the connection's time (with TLS, the
handshake's too) and the echo's round trip. Over UDP a probe is one datagram
carrying its sequence number: an answer to an earlier probe is not taken for a
later one's, and is counted apart, as a duplicate (a copy of an answer already
taken: dup=SEQ on the line of the probe that saw it) or as late (after its
probe's timeout: late=SEQ). Each probe is bounded by --timeout.

One line per probe goes to standard output (seq=3 peer=127.0.0.1:10000
connect=0.210ms rtt=0.431ms, or what went wrong), then ping's summary: probes
sent and received, loss, and min/avg/max/mdev of the round trips and of the
connections, with their p50 and p99. --json prints one JSON object per probe
as it ends, then one for the summary. A probe that Ctrl-C or --deadline cuts
short is counted as sent and lost, as ping counts it, and fails nothing.

Exit codes (stricter than ping's 0 for any reply: a path that loses one
probe in ten fails):
  0  every probe was answered with its whole echo
  1  some probe failed (timeout, refused, reset, closed, mismatch: the echo
     differs, or error: any other), or none was answered, or --deadline
     came before --count replies, or standard output could not be written
  2  bad flags, arguments, environment or config file`,
		Example: `  echoctl ping --addr 127.0.0.1:10000 --count 5
  echoctl ping --addr udp://[::1]:7 --interval 200ms --size 512
  echoctl ping --addr tls://echo.example:443 --reuse --json
  echoctl ping --addr lb.example:9000 --resolve-each --source 10.0.0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := opts.setup(cmd, streams.Err)
			if err != nil {
				return err
			}
			client, err := newClient(cfg, logger)
			if err != nil {
				return usageError{err}
			}
			pc, err := pingOpts.config(cfg, client)
			if err != nil {
				return usageError{err}
			}
			return asRuntimeError(runPing(cmd.Context(), pc, pingOpts.json, streams.Out))
		},
	}
	addKeyFlags(cmd.Flags(), cmdPing)
	pingOpts.addFlags(cmd.Flags())
	return cmd
}

// runPing runs pc, printing each probe and the summary to out as text or
// JSON lines.
func runPing(ctx context.Context, pc ping.Config, asJSON bool, out io.Writer) error {
	var werr error
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	pc.OnProbe = func(p ping.Probe) {
		if werr != nil {
			return
		}
		if asJSON {
			werr = ping.WriteProbeJSON(out, p)
		} else {
			_, werr = fmt.Fprintln(out, ping.ProbeLine(p))
		}
		if werr != nil {
			stop() // nobody sees the probes: stop probing
		}
	}
	sum, err := ping.Run(ctx, pc)
	if err != nil {
		return err
	}
	if werr == nil {
		if asJSON {
			werr = ping.WriteSummaryJSON(out, sum)
		} else {
			_, werr = fmt.Fprint(out, "\n")
			if werr == nil {
				werr = ping.WriteSummary(out, sum)
			}
		}
	}
	if werr != nil {
		return fmt.Errorf("write standard output: %w", werr)
	}
	switch {
	case sum.OK():
	case sum.Cut && sum.Received == sum.Sent-sum.Errors["interrupted"]:
		return errDeadlineCut
	default:
		return errProbesFailed
	}
	return nil
}

package cmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
)

// benchOptions are the bench command's own flags; --addr goes through the
// configuration like serve's and send's.
type benchOptions struct {
	mode      string
	conns     int
	size      int
	pipeline  int
	rate      float64
	chunk     int
	duration  time.Duration
	warmup    time.Duration
	opTimeout time.Duration
	serverPID int
	greeting  bool
	parts     []string
	outputs   benchOutputs
	tlsResume bool
}

func (o *benchOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.mode, "mode", string(bench.ModePingPong), "pingpong, stream, connrate or idle")
	fs.IntVar(&o.conns, "conns", bench.DefaultConns, "connections (connrate: workers, each running one cycle at a time)")
	fs.IntVar(&o.size, "size", bench.DefaultSize, "pingpong: message size in bytes; udp://: datagram size, 32 to 65507 (65527 to an IPv6 address)")
	fs.IntVar(&o.pipeline, "pipeline", bench.DefaultPipeline, "pingpong: messages outstanding on each connection")
	fs.Float64Var(&o.rate, "rate", 0, "pingpong: messages, connrate: cycles per second in all, on a fixed schedule; latency counts from when each was due (0: as fast as the echoes come back); udp://: datagrams per second in all, required")
	fs.IntVar(&o.chunk, "chunk", bench.DefaultChunk, "stream: bytes per write")
	fs.StringArrayVar(&o.parts, "part", nil, "connrate: what each cycle writes, one write per --part, in order, repeatable (default: the seed client's three parts)")
	fs.DurationVar(&o.duration, "duration", bench.DefaultDuration, "how long to measure, after the warmup")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "how long to run before measuring; refused connects are retried meanwhile")
	fs.DurationVar(&o.opTimeout, "op-timeout", bench.DefaultOpTimeout, "deadline of each connect, round trip, stream read or write, and connrate cycle; udp://: how long to wait for the echoes still out after the last datagram")
	fs.IntVar(&o.serverPID, "server-pid", 0, "the server's process id (Linux): report its CPU time per message and, in idle mode, its memory per connection")
	o.outputs.addFlags(fs)
	fs.BoolVar(&o.tlsResume, "tls-resume", false, "tls:// address: resume TLS sessions from a cache the connections share, rather than a full handshake each; the result counts those resumed")
	fs.BoolVar(&o.greeting, "greeting", false, "read the line the server writes first on each connection (serve --greeting) and count connections per greeting (backend) in the result")
}

// modeFlags are bench's flags that only some modes read: with another
// mode they are refused, as --rate and --part are (bench.Config.Validate),
// rather than ignored.
var modeFlags = []struct {
	flag   string
	modes  []bench.Mode
	reason string
}{
	{"size", []bench.Mode{bench.ModePingPong}, "only pingpong sends --size-byte messages (stream writes --chunk bytes, connrate its --part)"},
	{"pipeline", []bench.Mode{bench.ModePingPong}, "only pingpong has messages outstanding"},
	{"chunk", []bench.Mode{bench.ModeStream}, "only stream writes --chunk bytes (pingpong sends --size-byte messages)"},
}

// config returns the run the flags describe, against cfg's addr with
// cfg's busy-poll, and for a tls:// address send's TLS settings.
// bench.Config.Validate checks it as given, where Run would take a zero as
// the default: --conns 0 is refused.
func (o *benchOptions) config(fs *pflag.FlagSet, cfg *Config, logger zerolog.Logger) (bench.Config, error) {
	for _, f := range modeFlags {
		if fs.Changed(f.flag) && !slices.Contains(f.modes, bench.Mode(o.mode)) {
			return bench.Config{}, flagError(&bench.ConfigError{Field: f.flag, Value: fs.Lookup(f.flag).Value.String(),
				With: "mode", WithValue: o.mode, Reason: f.reason})
		}
	}
	a, err := echo.ParseAddr(cfg.Addr)
	if err != nil {
		return bench.Config{}, fmt.Errorf("invalid --addr %q: %w", cfg.Addr, err)
	}
	addr := cfg.Addr
	if a.Network == echo.NetworkTCP {
		addr = net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
	}
	var tc *tls.Config
	if a.Network == echo.NetworkTLS {
		if tc, err = clientTLS(cfg.Transport, logger); err != nil {
			return bench.Config{}, err
		}
	}
	bc := bench.Config{
		Addr:      addr,
		TLSConfig: tc,
		TLSResume: o.tlsResume,
		Mode:      bench.Mode(o.mode),
		Conns:     o.conns,
		Size:      o.size,
		Pipeline:  o.pipeline,
		Rate:      o.rate,
		Chunk:     o.chunk,
		Duration:  o.duration,
		Warmup:    o.warmup,
		OpTimeout: o.opTimeout,
		ServerPID: o.serverPID,
		BusyPoll:  cfg.BusyPoll,
		Proxy:     cfg.Transport.Proxy,
		Greeting:  o.greeting,
		Parts:     o.parts,
	}
	if err := bc.Validate(); err != nil {
		return bench.Config{}, flagError(err)
	}
	return bc, nil
}

// flagError says which flag a *bench.ConfigError is about, in the words of
// the command line ("invalid --conns 0: must be ..."); other errors are
// returned as they are.
func flagError(err error) error {
	var ce *bench.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	subject := "--" + ce.Field
	if ce.Value != "" {
		subject += " " + ce.Value
	}
	if ce.With != "" {
		subject += " with --" + ce.With + " " + ce.WithValue
	}
	return fmt.Errorf("invalid %s: %s", subject, ce.Reason)
}

func newBenchCmd(opts *globalOptions, streams Streams) *cobra.Command {
	benchOpts := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test an echo server, verifying every byte echoed",
		Long: `Load-test any echo server at --addr, echoctl's or another, over TCP, TLS
(tls://), a Unix socket (unix://) or UDP (udp://), verifying every byte it
echoes, and report throughput, latency percentiles and errors.

Modes:
  pingpong  each connection writes a --size message and reads it back, with
            --pipeline messages outstanding; with --rate, on a fixed schedule
  stream    each connection writes --chunk bytes at a time without waiting,
            reading the echo back as it comes
  connrate  the seed client's cycle, over and over on --conns workers:
            connect, write the three parts (or each --part), half-close,
            read until the server closes, close; with --rate, that many
            cycles a second
  idle      open --conns connections, check each echoes one byte, and hold
            them; with --server-pid, report the server's memory per connection

The run measures for --duration after a --warmup in which connections open;
every operation has a deadline (--op-timeout), and the run ends on time even
if the server stalls. It reports its own CPU use, in percent of one CPU: near
100 with the load on one CPU, the load generator was the limit, not the
server. With --server-pid (Linux) it also reports the server's CPU time per
message, per connection cycle and per GB, and the kernel's part of it, read
from /proc.

If no connection at all opens in the first second (no server there), the
run ends at once; once the server has been reached, refused connects are
retried in the warmup and counted as errors after it. SIGINT or SIGTERM cuts
the run short: the result of the time measured so far is printed, marked
INTERRUPTED, and the exit code is 1.

With --rate, the connections send that many messages (connrate: start that
many cycles) per second in all, each on its own fixed schedule, and one held
up by a late echo has its latency counted from when it was due, not from
when it could start: a server that stalls shows the whole stall in the
percentiles (as wrk2 does, against coordinated omission). On Linux the
schedule keeps to tens of microseconds; elsewhere to about a millisecond.

With --busy-poll D, each read of an echo looks for it for up to D before
it waits to be woken: a wake-up takes tens of microseconds on virtual
machines, and without this it counts in every latency. It costs the load
generator a CPU while the run lasts, so --conns must be at most the CPUs it
may use. Against a server that also busy-polls (echoctl serve --busy-poll), a
round trip over loopback shows what the path costs rather than what waking
two threads costs (docs/usage.md).

Over tls:// every mode runs on TLS connections, verified with --tls-ca (or
the system's roots), --tls-server-name, --tls-insecure, and a client
certificate with --tls-cert and --tls-key, as for send; the result counts
the handshakes. Each connection runs a full handshake, or with --tls-resume
resumes a session from a cache the connections share: connrate then shows
what the server's session tickets save. Over unix:// every mode runs as over
TCP.

Over udp:// the run sends datagrams of --size bytes (32 to 65507, or 65527
to an IPv6 address), --rate of them per second in all (required), open loop
over --conns sockets: each goes when it is due, whatever has come back. Each
carries the run's identifier, a sequence number and its send time, and its
echo is verified whole (a changed datagram is a mismatch). After the last,
the run waits up to --op-timeout for the echoes still out. The result counts
apart, as RFC 4737 does, the datagrams lost (no copy came back), reordered
(came back after a later one: late, not lost) and duplicated (extra
copies), and gives the RFC 3550 interarrival jitter and the latency
percentiles.

With --proxy-protocol v1|v2, each connection writes a PROXY protocol header
first, as a load balancer does (--proxy-source, --proxy-dest and --proxy-tlv
as for send). With --greeting, each connection reads the line the server
writes first (serve --greeting) before the load, and the result counts the
connections per greeting: how a balancer spreads them over its backends.

A progress line is shown each second when standard error is a terminal; the
result goes to standard output as a table, or with --json as one object.
With --json-stream, one JSON object a line: each second of the measured
window as it ends (its throughput, errors and latency percentiles, from an
HDR histogram of that second alone), then the result, as --json has it.
--hgrm FILE writes the latency distribution in HdrHistogram's percentile
format, and --html FILE a page with the run's settings, throughput and
errors each second and its latency percentile curve; "bench report" draws
the --json results of several runs on the same axes.

Exit codes:
  0  every echo matched and the run had no errors
  1  the run failed: errors (refused, reset, timed out, closed early) or
     no echo measured, or fewer connections open when measuring began
     than --conns (with --warmup 0, fewer opened in the run); no
     connection could be opened; or the run was interrupted
  2  bad flags, arguments, environment or config file
  3  an echo differed from what was sent (the message says where)`,
		Example: `  echoctl bench --addr 127.0.0.1:10000 --conns 50 --duration 5s
  echoctl bench --conns 10 --rate 2000 --duration 30s
  echoctl bench --conns 1 --busy-poll 200us
  echoctl bench --mode stream --conns 16 --chunk 65536 --json
  echoctl bench --conns 10 --duration 30s --json-stream --hgrm run.hgrm --html run.html
  echoctl bench --addr udp://127.0.0.1:10000 --rate 10000 --conns 4 --size 512
  echoctl bench --addr tls://echo.example:443 --mode connrate --conns 8 --tls-resume
  echoctl bench --addr unix:///run/echoctl.sock --conns 16
  echoctl bench --mode connrate --conns 4 --proxy-protocol v2 --greeting
  echoctl bench --mode idle --conns 10000 --server-pid "$(pgrep -n echoctl)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := opts.setup(cmd, streams.Err)
			if err != nil {
				return err
			}
			bc, err := benchOpts.config(cmd.Flags(), cfg, logger)
			if err != nil {
				return usageError{err}
			}
			benchOpts.outputs.inputs = benchInputs(cfg)
			var progress io.Writer
			if isTTY(streams.Err) {
				progress = streams.Err
			}
			return runBench(cmd.Context(), bc, benchOpts.outputs, streams.Out, progress)
		},
	}
	addKeyFlags(cmd.Flags(), cmdBench)
	benchOpts.addFlags(cmd.Flags())
	cmd.AddCommand(newBenchReportCmd(streams))
	return cmd
}

// runBench runs cfg and prints the result to out, as a table or as JSON
// (with --json-stream, each second as it ends first), and writes the
// --hgrm and --html files, even when the run had errors. If progress is
// not nil, a progress line is rewritten on it every second.
func runBench(ctx context.Context, cfg bench.Config, o benchOutputs, out, progress io.Writer) error {
	files, err := o.create()
	if err != nil {
		return usageError{err}
	}
	if o.stream {
		streamSeconds(&cfg, out)
	}
	var mu sync.Mutex
	shown := false
	if progress != nil {
		cfg.Progress = func(p bench.Progress) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(progress, "\r\x1b[K%s", progressLine(p))
			shown = true
		}
	}
	res, err := bench.Run(ctx, cfg)
	mu.Lock()
	if shown {
		fmt.Fprint(progress, "\r\x1b[K")
	}
	mu.Unlock()
	if res == nil {
		files.discard()
	}
	if errors.Is(err, bench.ErrInvalidConfig) {
		return usageError{err}
	}
	if res != nil {
		res.Label = o.label
		werr := errors.Join(writeResult(o, res, out), files.write(o, res))
		if err == nil && werr != nil {
			err = werr
		}
	}
	return asRuntimeError(err)
}

// benchInputs are the files a bench run reads, which its outputs must
// not overwrite: the config file and the TLS files.
func benchInputs(cfg *Config) []namedPath {
	var in []namedPath
	for _, f := range []namedPath{
		{"the config file", cfg.File},
		{"the --tls-cert file", cfg.Transport.TLSCert},
		{"the --tls-key file", cfg.Transport.TLSKey},
		{"the --tls-ca file", cfg.Transport.TLSCA},
	} {
		if f.path != "" {
			in = append(in, f)
		}
	}
	return in
}

// progressLine describes a run in progress on one short line.
func progressLine(p bench.Progress) string {
	phase := "run"
	if p.Warmup {
		phase = "warmup"
	}
	return fmt.Sprintf("bench %3.0fs %-6s  %d open  %.0f msg/s  %.2f MB/s  %.0f conn/s  %d errors",
		p.Elapsed.Seconds(), phase, p.Open, p.MessagesPerSec, p.MBPerSec, p.ConnsPerSec, p.Errors)
}

// isTTY reports whether w is a terminal, where a progress line that
// rewrites itself makes sense.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

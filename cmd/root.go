// Package cmd is echoctl's command line: it parses flags, environment and
// config file into a Config, sets up logging, and calls pkg/echo.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/echoctl/echoctl/internal/logging"
	"github.com/echoctl/echoctl/pkg/bench"
)

// Streams are the standard streams a command uses.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// globalOptions are the flags every command has.
type globalOptions struct {
	configFile string
	verbose    bool
}

func (o *globalOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.configFile, "config", "", "config file (YAML, TOML or JSON; default: first of ./echoctl.yaml, $XDG_CONFIG_HOME/echoctl/config.yaml, /etc/echoctl/config.yaml)")
	addKeyFlags(fs, cmdEvery)
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log at debug level: the seed's whole transcript (same as --log-level debug)")
}

// setup loads the configuration for cmd and builds its logger.
func (o *globalOptions) setup(cmd *cobra.Command, stderr io.Writer) (*Config, zerolog.Logger, error) {
	if f := cmd.Flags().Lookup("config"); f != nil && f.Changed && o.configFile == "" {
		// A script's unset variable, most likely: not the search path.
		return nil, zerolog.Nop(), usageError{errors.New(`invalid --config "": name a config file, or leave --config out to search for one`)}
	}
	cfg, err := loadConfig(cmd.Flags(), o.configFile)
	if err != nil {
		return nil, zerolog.Nop(), usageError{err}
	}
	if o.verbose {
		// -v wins over the environment and the file, as any flag does;
		// with a --log-level that says otherwise, neither may win silently.
		if f := cmd.Flags().Lookup("log-level"); f != nil && f.Changed && cfg.LogLevel != zerolog.DebugLevel {
			return nil, zerolog.Nop(), usageError{fmt.Errorf("-v (--verbose) is --log-level debug: give one of them, not --log-level %s as well", f.Value)}
		}
		cfg.LogLevel = zerolog.DebugLevel
	}
	logger, err := logging.New(logging.Serialized(stderr), cfg.LogFormat, cfg.LogLevel, isTerminal(stderr))
	if err != nil {
		return nil, zerolog.Nop(), usageError{err}
	}
	for _, w := range cfg.Warnings {
		logger.Warn().Str("logger", "main").Msg(w)
	}
	return cfg, logger, nil
}

// isTerminal reports whether w is a terminal that wants colour.
func isTerminal(w io.Writer) bool {
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		w = u.Unwrap()
	}
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	return isatty.IsTerminal(f.Fd())
}

// newRootCmd builds the echoctl command tree.
func newRootCmd(streams Streams) *cobra.Command {
	opts := &globalOptions{}
	root := &cobra.Command{
		Use:   "echoctl",
		Short: "Echo server, client and load tester over TCP, UDP, TLS and Unix sockets",
		Long: `echoctl is an echo server and client over TCP, UDP, TLS and Unix sockets, the
Go implementation of the asyncio streams echo server and client of PyMOTW-3,
and a load tester for any TCP echo server. Use it to test a network path, a
load balancer, a firewall rule or a latency budget.

    echoctl serve --addr localhost:10000     echo every byte back
    echoctl send "msg" ...                   send, half-close, verify the echo
    echoctl bench --conns 10                 load-test, verifying every byte

Configuration comes from flags, then ECHOCTL_* environment variables, then a
config file, then the defaults. See docs/configuration.md.

` + exitCodesHelp,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	opts.addFlags(root.PersistentFlags())
	root.AddCommand(newServeCmd(opts, streams), newSendCmd(opts, streams), newVersionCmd(streams), newBenchCmd(opts, streams), newPingCmd(opts, streams), newGenCmd())
	strictHelpCmd(root)
	strictCompletionCmd(root)
	decimalIntFlags(root)
	completeValues(root)
	return root
}

// completeValues makes the shells complete the flags that take one of a
// few words with those words, rather than with file names.
func completeValues(root *cobra.Command) {
	modes := make([]string, len(bench.Modes))
	for i, m := range bench.Modes {
		modes[i] = string(m)
	}
	words := map[string]map[string][]string{ // command, flag: words
		cmdEvery: {keyLogLevel: logging.Levels, keyLogFormat: logging.Formats},
		cmdServe: {keyProxyProtocol: {"on", "off"}},
		cmdSend:  {keyProxyProtocol: {"v1", "v2"}},
		cmdBench: {keyProxyProtocol: {"v1", "v2"}, "mode": modes},
	}
	for _, c := range append([]*cobra.Command{root}, root.Commands()...) {
		name := c.Name()
		if c == root {
			name = cmdEvery
		}
		for flag, w := range words[name] {
			_ = c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(w, cobra.ShellCompDirectiveNoFileComp))
		}
	}
}

// strictHelpCmd makes `echoctl help TOPIC` a usage error when TOPIC is not
// a command: cobra's own help command prints the root's usage and exits 0.
func strictHelpCmd(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, help := range root.Commands() {
		if help.Name() != "help" {
			continue
		}
		help.Run = nil
		help.RunE = func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if cmd == nil || err != nil || len(rest) > 0 {
				return usageError{fmt.Errorf("unknown help topic %q: %q lists the commands", strings.Join(args, " "), c.Root().Name()+" help")}
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		}
	}
}

// Run executes echoctl with args (without the program name) and returns the
// exit code. Errors are printed to streams.Err as one line.
func Run(ctx context.Context, args []string, streams Streams) int {
	out := &outWriter{w: streams.Out}
	streams.Out = out
	root := newRootCmd(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var rt runtimeError
	if out.err != nil && !errors.As(err, &rt) && exitCode(err) != ExitMismatch {
		// Help or a completion script that did not reach standard
		// output: cobra writes them without a word of a failed write.
		err = runtimeError{fmt.Errorf("write standard output: %w", out.err)}
	}
	if err != nil {
		fmt.Fprintf(streams.Err, "echoctl: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return exitCode(err)
}

// Execute runs echoctl with the process's arguments and standard streams.
// SIGINT and SIGTERM cancel the command's context (serve shuts down
// gracefully); after the first, a second signal kills the process.
func Execute() int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			// Give the signals back to the runtime before anything can see
			// the cancel: serve logs "closing server" on it, and a second
			// signal from then on must find the default action (exit), not
			// a channel nobody reads.
			signal.Stop(sigs)
			cancel()
		case <-ctx.Done():
		}
	}()
	return Run(ctx, os.Args[1:], Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
}

// outWriter is standard output as Run hands it to the commands: it
// remembers the first write that failed.
type outWriter struct {
	w   io.Writer
	err error
}

func (o *outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

// Unwrap returns the writer o writes to.
func (o *outWriter) Unwrap() io.Writer { return o.w }

// Command benchrun is `make bench`: it starts each echo server in turn on
// loopback, pinned to CPU 0, runs `echoctl bench --json` against it pinned
// to CPU 1, in interleaved rounds (A B C D E, A B C D E, ...), and writes
// the figures, their ratios to echoctl and the targets to a
// Markdown page (docs/benchmarks.md), and their charts, drawn by echoctl
// bench report, to an HTML page beside it (docs/benchmarks.html).
//
// Usage (from the repository root, after building the binaries):
//
//	bin/benchrun -out docs/benchmarks.md
//
// See scripts/bench.sh, which builds everything and passes the paths.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are benchrun's flags.
type options struct {
	echoctl, goecho, gnetecho string
	python, asyncio           string
	asyncioArgs               string
	socat                     string
	rounds                    int
	warmup, duration          time.Duration
	idleWarmup, idleDuration  time.Duration
	out, raw, html            string
	only, servers             string
	portBase                  int
	pin                       bool
	command                   string
	started                   int64
}

func parseFlags() *options {
	o := &options{}
	flag.StringVar(&o.echoctl, "echoctl", "bin/echoctl", "the echoctl binary (server and load generator)")
	flag.StringVar(&o.goecho, "goecho", "bin/goecho", "the plain Go echo server")
	flag.StringVar(&o.gnetecho, "gnetecho", "bin/gnetecho", "the gnet echo server")
	flag.StringVar(&o.python, "python", "python3", "the Python interpreter for the asyncio server (empty: skip it)")
	flag.StringVar(&o.asyncio, "asyncio", "testdata/seed/asyncio_echo_server_coroutine.py", "the seed's asyncio echo server")
	flag.StringVar(&o.asyncioArgs, "asyncio-args", "--quiet {host} {port}", "its arguments, quiet; {host} and {port} are replaced")
	flag.StringVar(&o.socat, "socat", "socat", "the socat binary (empty: skip socat)")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of every server in every mode")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "echoctl bench --warmup")
	flag.DurationVar(&o.duration, "duration", 1500*time.Millisecond, "echoctl bench --duration")
	flag.DurationVar(&o.idleWarmup, "idle-warmup", 3*time.Second, "--warmup for idle mode (the time to open the connections)")
	flag.DurationVar(&o.idleDuration, "idle-duration", 2*time.Second, "--duration for idle mode")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "the Markdown page to write")
	flag.StringVar(&o.html, "html", "docs/benchmarks.html", "the HTML page of charts to write beside it, which it links (empty: none)")
	flag.StringVar(&o.raw, "raw", "bin/bench-results.json", "where to write every run's JSON (empty: nowhere)")
	flag.StringVar(&o.only, "modes", "", "comma-separated mode ids to run (default: all)")
	flag.StringVar(&o.servers, "servers", "", "comma-separated server ids to run (default: all)")
	flag.IntVar(&o.portBase, "port", 21000, "first loopback port to use; each run takes the next")
	flag.BoolVar(&o.pin, "pin", true, "pin the server to CPU 0 and the load to CPU 1 with taskset, if it works")
	flag.StringVar(&o.command, "command", "make bench", "the command named in the page as the one that made it")
	flag.Int64Var(&o.started, "started", 0, "when the whole run started, builds included (Unix seconds), for the wall time the page gives")
	flag.Parse()
	return o
}

func main() {
	o := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	start := time.Now()
	env := probeEnv(o)
	servers := selectServers(o, env)
	modes := selectModes(o)
	if len(servers) == 0 || len(modes) == 0 {
		return fmt.Errorf("nothing to run: %d servers, %d modes", len(servers), len(modes))
	}
	if servers[0].id != "echoctl" {
		return fmt.Errorf("the echoctl server must be among -servers: every ratio is to it")
	}
	total := 0
	for _, m := range modes {
		for _, s := range servers {
			if _, skip := s.skipped(m.id); !skip {
				total += o.rounds
			}
		}
	}
	logf("%d runs: %d modes × %d servers × %d rounds (%s)", total, len(modes), len(servers), o.rounds, env.pinNote)

	r := &runner{o: o, env: env, port: o.portBase}
	var runs []*runResult
	n := 0
	for _, m := range modes {
		for round := 1; round <= o.rounds; round++ {
			for _, s := range servers {
				if reason, skip := s.skipped(m.id); skip {
					if round == 1 && reason != "" {
						logf("skip %-9s %-14s %s", s.id, m.id, reason)
					}
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				n++
				res := r.once(ctx, s, m, round)
				logf("[%2d/%d] %-14s round %d %-9s %s", n, total, m.id, round, s.id, res.summary())
				runs = append(runs, res)
			}
		}
	}
	env.loadAfter = loadAverage()
	env.wall = time.Since(start)
	if o.started > 0 {
		env.wall = time.Since(time.Unix(o.started, 0))
		env.wallNote = " (builds included)"
	}

	if o.raw != "" {
		if b, err := json.MarshalIndent(runs, "", "  "); err == nil {
			if err := os.WriteFile(o.raw, b, 0o644); err != nil {
				logf("raw results: %v", err)
			}
		}
	}
	if o.html != "" {
		if err := writeHTML(ctx, o, servers, modes, runs); err != nil {
			logf("no HTML page: %v", err)
		} else {
			env.charts = filepath.Base(o.html)
			logf("wrote %s", o.html)
		}
	}
	page := report(o, env, servers, modes, runs)
	if err := os.WriteFile(o.out, []byte(page), 0o644); err != nil {
		return err
	}
	logf("wrote %s in %s", o.out, env.wall.Round(time.Second))
	return refused(runs)
}

// refused is the error of a harness whose command lines echoctl bench
// refused (exit 2, a usage error), which no rerun mends: the page is
// written, with those runs listed, and make bench fails.
func refused(runs []*runResult) error {
	var n int
	var first *runResult
	for _, r := range runs {
		if r.Exit == 2 {
			if n++; first == nil {
				first = r
			}
		}
	}
	if n == 0 {
		return nil
	}
	what := "runs were"
	if n == 1 {
		what = "run was"
	}
	return fmt.Errorf("%d %s refused as a usage error (exit 2), the first %s in round %d of %s: %s", n, what, first.Server, first.Round, first.Mode, firstLine(first.Stderr))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// splitList splits a comma-separated flag into a set; empty means all.
func splitList(s string) map[string]bool {
	if s == "" {
		return nil
	}
	set := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		set[strings.TrimSpace(f)] = true
	}
	return set
}

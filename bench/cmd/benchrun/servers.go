package main

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// A server is one echo server under test.
type server struct {
	id    string // short name used in flags and logs
	name  string // the name in the page's tables
	about string // one line on what it is
	// argv is the command line serving on 127.0.0.1:port.
	argv func(port int) []string
	// skip names the modes this server does not run, with the reason.
	skip map[string]string
	// only, if set, names the only modes this server runs; it has no row
	// in the others.
	only map[string]bool
	// target, if set, is the address echoctl bench loads it at (default:
	// 127.0.0.1:port, addr).
	target func(port int) string
	// load, if set, is added to the echoctl bench command line against
	// it on port.
	load func(port int) []string
	// ready, if set, waits until it serves on port (default: a TCP
	// connect to 127.0.0.1:port, waitListening).
	ready func(ctx context.Context, port int, exited <-chan error) error
}

// skipped reports whether s sits out mode, and the reason to give for it
// ("" when s has no row in that mode's table).
func (s *server) skipped(mode string) (reason string, skip bool) {
	if s.only != nil && !s.only[mode] {
		return "", true
	}
	reason, skip = s.skip[mode]
	return reason, skip
}

// selectServers lists the servers to run, echoctl first, leaving out
// those whose tools are missing.
func selectServers(o *options, e *env) []*server {
	want := splitList(o.servers)
	all := []*server{
		{
			id: "echoctl", name: "echoctl",
			about: "`echoctl serve` at its defaults (log level info, stderr to /dev/null)",
			argv: func(port int) []string {
				return []string{o.echoctl, "serve", "--addr", addr(port)}
			},
		},
		{
			id: "goecho", name: "plain Go",
			about: "a goroutine per connection, 128-byte read/write loop (bench/cmd/goecho)",
			argv: func(port int) []string {
				return []string{o.goecho, "-addr", addr(port)}
			},
		},
		{
			id: "gnet", name: "gnet " + e.gnetVersion,
			about: "github.com/panjf2000/gnet/v2 event loop, multicore (bench/cmd/gnetecho)",
			argv: func(port int) []string {
				return []string{o.gnetecho, "-addr", addr(port)}
			},
		},
		{
			id: againID, name: "echoctl (again)",
			about: "the same `echoctl serve`, run once more in every round, after gnet: a control, whose ratio to echoctl is this machine's noise",
			argv: func(port int) []string {
				return []string{o.echoctl, "serve", "--addr", addr(port)}
			},
			skip: map[string]string{
				idleID: "memory per connection does not move with the machine's load: the control is left out of the longest mode",
			},
		},
	}
	all = append(all, &server{
		id: busyPollID, name: "echoctl --busy-poll 200us",
		about: "`echoctl serve --busy-poll 200us`: not its defaults, so in no target; its event loops poll for 200 µs after each message instead of sleeping, which trades CPU for latency; run in the two modes where the time to wake the server counts",
		argv: func(port int) []string {
			return []string{o.echoctl, "serve", "--addr", addr(port), "--busy-poll", "200us"}
		},
		only: map[string]bool{"pp128-c1": true, "pp128-c50-r5k": true},
	})
	all = append(all, &server{
		id: proxyID, name: "echoctl, PROXY v2",
		about: "`echoctl serve --addr 'tcp://127.0.0.1:PORT?proxy-protocol=on'`, loaded by `echoctl bench --proxy-protocol v2` (a header on each connection): what a PROXY listener costs, in the two modes issue 16 names",
		argv: func(port int) []string {
			return []string{o.echoctl, "serve", "--addr", "tcp://" + addr(port) + "?proxy-protocol=on"}
		},
		only: map[string]bool{"pp128-c50": true, "connrate-c8": true},
		load: func(int) []string { return []string{"--proxy-protocol", "v2"} },
	})
	all = append(all, &server{
		id: verboseID, name: "echoctl -v",
		about: "`echoctl serve -v`: the seed's whole transcript (a debug line for each read of up to --buffer-size bytes and for each echo, stderr to /dev/null): what logging the data costs, against the defaults",
		argv: func(port int) []string {
			return []string{o.echoctl, "serve", "--addr", addr(port), "-v"}
		},
		only: map[string]bool{"pp128-c50": true},
	})
	all = append(all, &server{
		id: timeoutsID, name: "echoctl --idle-timeout 2m --write-timeout 30s",
		about: "`echoctl serve --idle-timeout 2m --write-timeout 30s`: what the timeouts cost an idle connection (the event loops sweep them; issue 15)",
		argv: func(port int) []string {
			return []string{o.echoctl, "serve", "--addr", addr(port), "--idle-timeout", "2m", "--write-timeout", "30s"}
		},
		only: map[string]bool{idleID: true},
	})
	all = append(all, transportServers(o)...)
	if e.python != "" {
		all = append(all, &server{
			id: "asyncio", name: "asyncio (quiet)",
			about: "the seed's asyncio streams server with logging quieted, " + e.pythonVer,
			skip:  oneWriteSkip,
			argv: func(port int) []string {
				args := strings.NewReplacer("{host}", "127.0.0.1", "{port}", strconv.Itoa(port)).Replace(o.asyncioArgs)
				return append([]string{e.python, o.asyncio}, strings.Fields(args)...)
			},
		})
	}
	if e.socat != "" {
		all = append(all, &server{
			id: "socat", name: "socat",
			about: "`socat TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork PIPE`: a process per connection, " + e.socatVer,
			argv: func(port int) []string {
				return []string{e.socat, "TCP-LISTEN:" + strconv.Itoa(port) + ",bind=127.0.0.1,reuseaddr,fork", "PIPE"}
			},
			skip: map[string]string{
				idleID:        "socat forks a process per connection: 10,000 processes would not fit in the time or the open-file limit",
				connrateOneID: oneWriteSkip[connrateOneID],
			},
		})
	}
	var out []*server
	for _, s := range all {
		if want == nil || want[s.id] {
			out = append(out, s)
		}
	}
	return out
}

// connrateOneID is connrate with the seed's three parts in one write.
const connrateOneID = "connrate1-c8"

// seedMessage is the seed client's three parts as one string.
const seedMessage = "This is the message. It will be sent in parts."

// oneWriteSkip is why a server sits out connrateOneID: the mode compares
// echoctl with gnet, and the plain Go server for scale.
var oneWriteSkip = map[string]string{connrateOneID: "this mode compares echoctl with gnet (and plain Go) on how the client writes"}

// againID is the control: echoctl served a second time in each round. Its
// figures against echoctl's measure the noise of the machine, the scale on
// which a ratio between two servers means something.
const againID = "echoctl-again"

// busyPollID is echoctl with --busy-poll, shown where latency is measured.
const busyPollID = "echoctl-busy"

// proxyID is echoctl with a PROXY protocol listener, loaded with headers.
const proxyID = "echoctl-proxy"

// verboseID is echoctl logging the seed's transcript (-v).
const verboseID = "echoctl-v"

// timeoutsID is echoctl with an idle and a write timeout, held idle.
const timeoutsID = "echoctl-timeouts"

// idleID is the mode that holds connections idle and measures memory.
const idleID = "idle-c10000"

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// A mode is one workload: the echoctl bench flags and which figures the
// page reports for it.
type mode struct {
	id     string
	title  string
	kind   string // pingpong, bulk (pingpong of large messages), stream, connrate or idle
	args   []string
	warmup time.Duration
	dur    time.Duration
}

// selectModes lists the modes, in order.
func selectModes(o *options) []*mode {
	want := splitList(o.only)
	pp := func(id, title, kind string, args ...string) *mode {
		return &mode{id: id, title: title, kind: kind, args: args, warmup: o.warmup, dur: o.duration}
	}
	all := []*mode{
		pp("pp128-c1", "pingpong 128 B, 1 connection", "pingpong", "--mode", "pingpong", "--size", "128", "--conns", "1"),
		pp("pp128-c50", "pingpong 128 B, 50 connections", "pingpong", "--mode", "pingpong", "--size", "128", "--conns", "50"),
		pp("pp128-c1000", "pingpong 128 B, 1000 connections", "pingpong", "--mode", "pingpong", "--size", "128", "--conns", "1000"),
		// The latency a server adds at a load every server here sustains:
		// the same schedule for all, so the load is never the limit.
		pp("pp128-c50-r5k", "pingpong 128 B, 50 connections at a fixed 5,000 messages/s (latency at a given load)", "pingpong", "--mode", "pingpong", "--size", "128", "--conns", "50", "--rate", "5000"),
		pp("pp16k-c50", "pingpong 16 KiB, 50 connections", "bulk", "--mode", "pingpong", "--size", "16384", "--conns", "50"),
		pp("stream-c1", "stream 64 KiB writes, 1 connection", "stream", "--mode", "stream", "--chunk", "65536", "--conns", "1"),
		pp("stream-c16", "stream 64 KiB writes, 16 connections", "stream", "--mode", "stream", "--chunk", "65536", "--conns", "16"),
		pp("connrate-c8", "connrate, 8 workers (the seed client's cycle)", "connrate", "--mode", "connrate", "--conns", "8"),
		// The same cycle with its message in one write: what the servers
		// pay per connection when the parts' timing is out of the way
		// (report.go, connratePartsProse).
		pp(connrateOneID, "connrate, 8 workers, the seed's message in one write", "connrate", "--mode", "connrate", "--conns", "8", "--part", seedMessage),
		{id: idleID, title: "idle, 10,000 connections", kind: "idle",
			args: []string{"--mode", "idle", "--conns", "10000"}, warmup: o.idleWarmup, dur: o.idleDuration},
	}
	var out []*mode
	for _, m := range all {
		if want == nil || want[m.id] {
			out = append(out, m)
		}
	}
	return out
}

// benchArgs is the echoctl bench command line for m against s on port,
// without the pinning prefix and the server's pid: bench takes one --addr,
// the server's target.
func (m *mode) benchArgs(echoctl string, s *server, port int) []string {
	target := addr(port)
	if s.target != nil {
		target = s.target(port)
	}
	args := []string{echoctl, "bench", "--addr", target, "--json",
		"--warmup", m.warmup.String(), "--duration", m.dur.String()}
	args = append(args, m.args...)
	if s.load != nil {
		args = append(args, s.load(port)...)
	}
	return args
}

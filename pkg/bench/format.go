package bench

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes res as a table of labelled lines, for people.
func (res *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", label, fmt.Sprintf(format, args...))
	}
	row("mode", "%s: %s", res.Mode, res.describe())
	row("server", "%s", res.Addr)
	switch {
	case res.Mode == ModeIdle && res.Interrupted:
		row("run", "INTERRUPTED after %s of %s", seconds(res.Elapsed), seconds(res.Duration))
	case res.Mode == ModeIdle:
		row("run", "%s in all", seconds(res.Elapsed))
	case res.Interrupted && res.Elapsed == 0:
		row("measured", "nothing: INTERRUPTED %s into the %s warmup", seconds(res.WarmupElapsed), seconds(res.Warmup))
	case res.Interrupted:
		row("measured", "%s of %s, INTERRUPTED, after a %s warmup", seconds(res.Elapsed), seconds(res.Duration), seconds(res.WarmupElapsed))
	default:
		row("measured", "%s after a %s warmup", seconds(res.Elapsed), seconds(res.Warmup))
	}
	switch {
	case res.UDP != nil:
		u := res.UDP
		row("throughput", "%s datagrams/s, %.2f MB/s echoed (%d datagrams)", perSecond(res.MessagesPerSec), res.MBPerSec, res.Messages)
		stray := ""
		if u.Stray > 0 {
			stray = fmt.Sprintf(", %d stray ignored", u.Stray)
		}
		if res.ConnectRetries > 0 {
			stray += fmt.Sprintf(", %d refused in the warmup", res.ConnectRetries)
		}
		row("datagrams", "%d sent, %d echoed, %d lost (%.2f%%), %d reordered, %d duplicates%s", u.Sent, u.Received, u.Lost, u.LossPercent, u.Reordered, u.Duplicates, stray)
		if u.Scheduled > u.Sent {
			row("behind", "%d sent of the %d the rate scheduled in the window: the senders fell behind, and offered less than asked", u.Sent, u.Scheduled)
		}
		if u.JitterSockets == 0 && u.Jitter == 0 { // Jitter alone: a file from before JitterSockets
			row("jitter", "none: no socket had two echoes")
		} else {
			row("jitter", "%s (RFC 3550 interarrival jitter)", micros(u.Jitter))
		}
	case res.Mode == ModeIdle:
		row("held", "%d of %d connections, opened and checked in %s (%.0f/s)", res.Held, res.Conns, seconds(res.OpenTime), rate(float64(res.Messages), res.OpenTime))
	case res.Mode == ModeConnRate:
		row("throughput", "%s connections/s (%d cycles of connect, write, half-close, read, close)", perSecond(res.ConnsPerSec), res.Messages)
		row("data", "%.2f MB/s echoed", res.MBPerSec)
	case res.Mode == ModeStream:
		row("throughput", "%.2f MB/s echoed (%s chunks/s)", res.MBPerSec, perSecond(res.MessagesPerSec))
	default:
		row("throughput", "%s messages/s, %.2f MB/s echoed (%d messages)", perSecond(res.MessagesPerSec), res.MBPerSec, res.Messages)
	}
	if res.Mode != ModeConnRate && res.Mode != ModeIdle && res.UDP == nil {
		row("connections", "%d opened, %d open when measuring began, %d connects retried in the warmup", res.Connects, res.OpenAtStart, res.ConnectRetries)
	}
	if t := res.TLS; t != nil {
		row("tls", "%d handshakes, %d resumed a session", t.Handshakes, t.Resumed)
	}
	if res.Proxy != "" {
		row("proxy", "a PROXY %s header first on each connection", res.Proxy)
	}
	if res.Greetings != nil {
		row("greetings", "%s", res.Greetings.summary())
	}
	if l := res.Latency; l.Count > 0 {
		row("latency", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s over %d)",
			micros(l.P50), micros(l.P90), micros(l.P99), micros(l.P999), micros(l.Max), micros(l.Mean), l.Count)
	} else {
		row("latency", "no echo timed")
	}
	if n := res.Errors.Total(); n == 0 {
		row("errors", "none")
	} else {
		row("errors", "%s", res.Errors.summary())
	}
	if m := res.FirstMismatch; m != nil {
		row("mismatch", "%s", strings.TrimPrefix(m.Message, "bench: "))
	}
	if res.FirstError != "" {
		row("first error", "%s", res.FirstError)
	}
	if res.LoadCPU > 0 {
		row("load cpu", "%.2f s: %.0f%% of one CPU%s", res.LoadCPU, res.LoadCPUPercent, loadNote(res.LoadCPUPercent, runtime.GOMAXPROCS(0)))
	}
	if s := res.Server; s != nil {
		var per []string
		if s.CPUPerMessage > 0 {
			unit := "message"
			switch res.Mode {
			case ModeConnRate:
				unit = "cycle"
			case ModeStream:
				unit = "chunk"
			case ModeIdle:
				unit = "connection"
			}
			per = append(per, fmt.Sprintf("%.2f µs per %s", s.CPUPerMessage, unit))
		}
		if s.CPUPerGB > 0 && res.Mode != ModeIdle {
			per = append(per, fmt.Sprintf("%.3f s per GB", s.CPUPerGB))
		}
		cpu := fmt.Sprintf("%.2f s (pid %d)", s.CPU, s.PID)
		if len(per) > 0 {
			cpu += ": " + strings.Join(per, ", ")
		}
		if s.CPU > 0 {
			cpu += fmt.Sprintf("; %.0f%% in the kernel", 100*s.SystemCPU/s.CPU)
		}
		row("server cpu", "%s", cpu)
		if res.Mode == ModeIdle {
			row("server memory", "RSS %s before, %s holding %d: %.0f bytes per connection",
				mebibytes(s.RSSBefore), mebibytes(s.RSSHeld), res.Held, s.BytesPerConn)
		}
	}
	return tw.Flush()
}

// loadBound is the share of its CPUs above which the load generator was
// likely what limited the run.
const loadBound = 95

// loadNote says when a load that used percent of one CPU, with cpus CPUs
// to run on, was the limit.
func loadNote(percent float64, cpus int) string {
	if percent >= loadBound*float64(cpus) {
		return " (all the CPU the load could use: the load was the limit, not the server)"
	}
	return ""
}

// describe says what the run did, as Config.describe does.
func (res *Result) describe() string {
	c := Config{Addr: res.Addr, Mode: res.Mode, Conns: res.Conns, Size: res.Size, Pipeline: res.Pipeline, Chunk: res.Chunk, Rate: res.Rate,
		BusyPoll: time.Duration(res.BusyPoll * float64(time.Microsecond))}
	if res.Mode == ModeConnRate {
		s := fmt.Sprintf("%s, each cycle echoing %s", plural(res.Conns, "worker", "workers"), sizeString(res.Size))
		if res.Parts > 0 { // results from before Parts have none
			s += " written in " + plural(res.Parts, "part", "parts")
		}
		return s + c.atRate("cycles") + c.polling()
	}
	return c.describe()
}

func rate(n, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return n / secs
}

func seconds(s float64) string {
	return fmt.Sprintf("%.2fs", s)
}

// micros renders a latency given in microseconds.
func micros(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.1fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

func mebibytes(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// perSecond writes a rate a second: whole from 100 on, else with three
// significant digits, so that --rate 0.5 reads 0.5, not 0.
func perSecond(v float64) string {
	if v >= 100 || v == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

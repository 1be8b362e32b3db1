package bench

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what a run measured. Counts and rates cover the measured
// window, after the warmup; in idle mode, the whole run. It marshals to
// JSON with durations in seconds or microseconds, as the field names say.
type Result struct {
	// Label names the run in reports (bench report); Run leaves it empty
	// for the caller to set (bench --label).
	Label string `json:"label,omitempty"`
	// Mode, Addr, Conns, Size, Pipeline and Chunk repeat the Config, with
	// defaults applied; Size, Pipeline and Chunk are zero where the mode
	// does not use them.
	Mode     Mode   `json:"mode"`
	Addr     string `json:"addr"`
	Conns    int    `json:"conns"`
	Size     int    `json:"size,omitempty"`
	Pipeline int    `json:"pipeline,omitempty"`
	Chunk    int    `json:"chunk,omitempty"`
	// Parts is how many writes each connrate cycle makes its Size bytes
	// in (Config.Parts).
	Parts int `json:"parts,omitempty"`
	// Rate is the Config's Rate: the messages (connrate: cycles) per
	// second asked for, on a schedule; zero when they went as fast as the
	// echoes came back.
	Rate float64 `json:"rate,omitempty"`
	// Proxy is the version of the PROXY header each connection sent
	// first ("v1", "v2"); empty without one.
	Proxy string `json:"proxy_protocol,omitempty"`
	// BusyPoll is the Config's BusyPoll, in microseconds; zero when reads
	// waited at once.
	BusyPoll float64 `json:"busy_poll_us,omitempty"`
	// Warmup and Duration are the configured warmup and measured
	// duration, in seconds.
	Warmup   float64 `json:"warmup_s"`
	Duration float64 `json:"duration_s"`
	// Interrupted is true when the run was cut short: its context ended
	// before the run did. WarmupElapsed and Elapsed then say how much of
	// it ran.
	Interrupted bool `json:"interrupted"`
	// WarmupElapsed is how long the warmup ran, in seconds: Warmup, or
	// less when the run was interrupted during it; zero in idle mode,
	// which measures from the start.
	WarmupElapsed float64 `json:"warmup_elapsed_s"`
	// Elapsed is the length of the measured window, in seconds: Duration,
	// or less when the run was interrupted (zero if in the warmup).
	Elapsed float64 `json:"elapsed_s"`

	// Messages counts echoes verified in the measured window: pingpong
	// messages, stream chunks, connrate cycles, idle connections checked.
	// Each of them is timed in Latency, so Latency.Count equals it.
	Messages int64 `json:"messages"`
	// Bytes counts bytes echoed and verified (one direction) in the
	// measured window.
	Bytes int64 `json:"bytes"`
	// Connects counts connections opened during the whole run, warmup
	// included.
	Connects int64 `json:"connects"`
	// ConnectRetries counts connects refused or timed out during the
	// warmup and retried (over UDP, datagrams refused in the warmup);
	// they are not errors.
	ConnectRetries int64 `json:"connect_retries"`
	// OpenAtStart is, in pingpong and stream modes, how many connections
	// were open when the measured window began; with a warmup, a run
	// that had fewer than Conns open then fails (with none, a run that
	// opened fewer than Conns in all).
	OpenAtStart int64 `json:"open_at_start,omitempty"`

	// MessagesPerSec, MBPerSec (10^6 bytes echoed per second) and
	// ConnsPerSec (connections opened per second) are the throughput in
	// the measured window.
	MessagesPerSec float64 `json:"messages_per_s"`
	MBPerSec       float64 `json:"mb_per_s"`
	ConnsPerSec    float64 `json:"conns_per_s"`

	// Latency summarises the time each echo took: a pingpong round trip,
	// a stream chunk from its write to its verified echo, a connrate
	// cycle, an idle connect and one-byte echo.
	Latency Latency `json:"latency_us"`
	// LatencyCurve is the whole distribution of Latency: the latency at
	// each percentile, in steps that halve the distance to 100% five at
	// a time, as HdrHistogram's percentile distribution lists it (see
	// WriteHgrm); empty when no echo was timed.
	LatencyCurve []Percentile `json:"latency_curve,omitempty"`
	// Seconds are the measured window's seconds, each with its own
	// throughput, errors and latency percentiles.
	Seconds []Second `json:"seconds,omitempty"`

	// Errors counts errors by kind, in the whole run: the warmup's count
	// (but for connects refused or timed out in it, which are retried),
	// unlike the measured window's Seconds.
	Errors ErrorCounts `json:"errors"`
	// FirstError describes the first error that was not a mismatch,
	// prefixed by its kind; empty if none.
	FirstError string `json:"first_error,omitempty"`
	// FirstMismatch describes the first mismatch; nil if none.
	FirstMismatch *Mismatch `json:"first_mismatch,omitempty"`

	// TLS counts, for a tls:// address, the TLS handshakes of the whole
	// run, warmup included, and how many resumed a session
	// (Config.TLSResume); nil for any other address.
	TLS *TLSStats `json:"tls,omitempty"`

	// UDP is, for a udp:// address, what became of the datagrams sent in
	// the measured window; nil for any other address. Messages then
	// counts the datagrams echoed (each once), Bytes their bytes.
	UDP *UDPStats `json:"udp,omitempty"`

	// Greetings counts the connections opened in the whole run, warmup
	// included, by the greeting line the server wrote first: which
	// backend behind a load balancer answered. Nil without
	// Config.Greeting.
	Greetings Greetings `json:"greetings,omitempty"`

	// Held is, in idle mode, how many connections were open and healthy
	// at the end.
	Held int `json:"held,omitempty"`
	// OpenTime is, in idle mode, how long opening and checking every
	// connection took, in seconds.
	OpenTime float64 `json:"open_s,omitempty"`

	// LoadCPU is the CPU time, user and system, this process (the load)
	// used in the measured window, in seconds; LoadCPUPercent is that
	// against the window's length, where 100 is one CPU kept busy. With
	// the load on one CPU, near 100 means the load, not the server, may
	// have been the limit. Both are zero where not measured.
	LoadCPU        float64 `json:"load_cpu_s,omitempty"`
	LoadCPUPercent float64 `json:"load_cpu_percent,omitempty"`

	// Server is what the run measured of the server process; nil without
	// Config.ServerPID.
	Server *ServerStats `json:"server,omitempty"`

	// hist holds the latencies of the measured window, in nanoseconds:
	// what WriteHgrm writes. Nil in a Result decoded from JSON.
	hist *hdrhistogram.Histogram
}

// TLSStats counts a run's TLS handshakes.
type TLSStats struct {
	// Handshakes counts the handshakes completed.
	Handshakes int64 `json:"handshakes"`
	// Resumed counts those that resumed a session from the run's cache
	// rather than running a full handshake.
	Resumed int64 `json:"resumed"`
}

// UDPStats is what became of the datagrams a udp:// run sent in its
// measured window, counted as RFC 4737 does: a datagram that comes back
// after one sent later is reordered, not lost; a datagram is lost only if
// no intact copy of it came back by the end of the drain (OpTimeout after
// the last was sent, or less once every one is back): one whose echo
// differs is lost too, and its echo counted as a mismatch.
type UDPStats struct {
	// Sent counts the datagrams sent.
	Sent int64 `json:"sent"`
	// Scheduled is how many the rate's schedule held in the measured
	// window; more than Sent when the senders fell behind it (a loaded
	// machine, or sockets not yet open with no warmup): the load offered
	// was then less than asked for.
	Scheduled int64 `json:"scheduled"`
	// Received counts the distinct datagrams echoed intact: each once,
	// however many copies came back. It equals the Result's Messages.
	Received int64 `json:"received"`
	// Lost is Sent less Received; LossPercent is that in percent of Sent.
	// An interrupted run does not drain: the datagrams still out then
	// count as lost.
	Lost        int64   `json:"lost"`
	LossPercent float64 `json:"loss_percent"`
	// Reordered counts the datagrams that came back after one with a
	// higher sequence number had (RFC 4737's Type-P-Reordered).
	Reordered int64 `json:"reordered"`
	// Duplicates counts the extra copies: a datagram that came back three
	// times counts 1 in Received and 2 here.
	Duplicates int64 `json:"duplicates"`
	// Jitter is the interarrival jitter of RFC 3550 (J += (|D| - J)/16
	// over the datagrams in the order they came back), in microseconds:
	// the mean of the sockets' that had two echoes or more when there are several.
	Jitter float64 `json:"jitter_us"`
	// JitterSockets is how many sockets had two echoes or more, whose
	// jitters Jitter averages; with none, no jitter was measured.
	JitterSockets int `json:"jitter_sockets"`
	// Stray counts the datagrams that came in the measured window and were
	// not this run's (another run's, or anything else sent to its
	// sockets): they are ignored.
	Stray int64 `json:"stray"`
}

// Latency holds percentiles of the echo time, in microseconds, from an HDR
// histogram with three significant digits.
type Latency struct {
	// Count is how many echoes were timed: every one the Result's
	// Messages counts.
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// ErrorCounts counts a run's errors by kind (see ErrorKind).
type ErrorCounts struct {
	Mismatch int64 `json:"mismatch"`
	Timeout  int64 `json:"timeout"`
	Reset    int64 `json:"reset"`
	Refused  int64 `json:"refused"`
	Other    int64 `json:"other"`
}

// Total is the number of errors of every kind.
func (e ErrorCounts) Total() int64 {
	return e.Mismatch + e.Timeout + e.Reset + e.Refused + e.Other
}

// add counts one error of kind k.
func (e *ErrorCounts) add(k ErrorKind) {
	switch k {
	case KindMismatch:
		e.Mismatch++
	case KindTimeout:
		e.Timeout++
	case KindReset:
		e.Reset++
	case KindRefused:
		e.Refused++
	default:
		e.Other++
	}
}

// Mismatch describes where an echo first differed from what was sent.
type Mismatch struct {
	// Conn is the connection (or connrate worker) index, from 0.
	Conn int `json:"conn"`
	// Offset counts from the first byte sent on that connection.
	Offset int64 `json:"offset"`
	// Expected and Got are the bytes at Offset, as Python's repr of a
	// bytes object ("b'a'"); Expected is empty when the server echoed
	// more than was sent, Got when it closed before echoing everything.
	Expected string `json:"expected,omitempty"`
	Got      string `json:"got,omitempty"`
	// Message is the error's text.
	Message string `json:"message"`
}

// ServerStats is what a run measured of the server process.
type ServerStats struct {
	// PID is the server's process id.
	PID int `json:"pid"`
	// CPU is the server's CPU time (user and system, with its child
	// processes) during the measured window, in seconds, with a
	// resolution of 10ms.
	CPU float64 `json:"cpu_s"`
	// SystemCPU is the part of CPU spent in the kernel, in seconds: that
	// of the process and of the children it has waited for (descendants
	// still running count in CPU only).
	SystemCPU float64 `json:"system_cpu_s"`
	// CPUPerMessage is CPU per echo verified (per cycle in connrate), in
	// microseconds.
	CPUPerMessage float64 `json:"cpu_us_per_message,omitempty"`
	// CPUPerGB is CPU per 10^9 bytes echoed, in seconds.
	CPUPerGB float64 `json:"cpu_s_per_gb,omitempty"`
	// CPUPerConn is CPU per connection opened in the measured window, in
	// microseconds.
	CPUPerConn float64 `json:"cpu_us_per_conn,omitempty"`
	// RSSBefore and RSSHeld are, in idle mode, the server's resident
	// memory before the run opened any connection and while it held them
	// all, in bytes; BytesPerConn is their difference divided by Held.
	RSSBefore    int64   `json:"rss_before,omitempty"`
	RSSHeld      int64   `json:"rss_held,omitempty"`
	BytesPerConn float64 `json:"bytes_per_conn,omitempty"`
}

// Progress is a run's state, passed to Config.Progress about once a second.
type Progress struct {
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Warmup is true until the warmup ends.
	Warmup bool
	// Open is the number of connections open now.
	Open int64
	// Messages, Bytes and Errors count since the run started.
	Messages, Bytes, Errors int64
	// MessagesPerSec, MBPerSec and ConnsPerSec are the rates since the
	// previous report.
	MessagesPerSec, MBPerSec, ConnsPerSec float64
}

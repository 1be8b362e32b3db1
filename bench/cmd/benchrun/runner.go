package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// benchResult is the part of `echoctl bench --json` that the page uses.
type benchResult struct {
	Mode           string  `json:"mode"`
	Elapsed        float64 `json:"elapsed_s"`
	Messages       int64   `json:"messages"`
	Bytes          int64   `json:"bytes"`
	Connects       int64   `json:"connects"`
	ConnectRetries int64   `json:"connect_retries"`
	MessagesPerSec float64 `json:"messages_per_s"`
	MBPerSec       float64 `json:"mb_per_s"`
	ConnsPerSec    float64 `json:"conns_per_s"`
	Latency        struct {
		P50  float64 `json:"p50"`
		P90  float64 `json:"p90"`
		P99  float64 `json:"p99"`
		P999 float64 `json:"p99_9"`
		Max  float64 `json:"max"`
	} `json:"latency_us"`
	Errors     map[string]int64 `json:"errors"`
	FirstError string           `json:"first_error"`
	Held       int              `json:"held"`
	OpenTime   float64          `json:"open_s"`
	// LoadCPUPercent is the load generator's CPU use in the window, in
	// percent of one CPU.
	LoadCPUPercent float64      `json:"load_cpu_percent"`
	Server         *serverStats `json:"server"`

	// raw is the whole of echoctl bench's output, which the HTML page
	// draws (writeHTML).
	raw []byte
}

// serverStats is what echoctl bench measured of the server.
type serverStats struct {
	CPU           float64 `json:"cpu_s"`
	SystemCPU     float64 `json:"system_cpu_s"`
	CPUPerMessage float64 `json:"cpu_us_per_message"`
	CPUPerGB      float64 `json:"cpu_s_per_gb"`
	RSSBefore     int64   `json:"rss_before"`
	RSSHeld       int64   `json:"rss_held"`
	BytesPerConn  float64 `json:"bytes_per_conn"`
}

// errorCount is the number of errors of every kind.
func (b *benchResult) errorCount() int64 {
	var n int64
	for _, v := range b.Errors {
		n += v
	}
	return n
}

// runResult is one run of one server in one mode.
type runResult struct {
	Server string       `json:"server"`
	Mode   string       `json:"mode"`
	Round  int          `json:"round"`
	Exit   int          `json:"exit"`
	Stderr string       `json:"stderr,omitempty"`
	Failed string       `json:"failed,omitempty"` // why the run does not count
	Result *benchResult `json:"result,omitempty"`
}

// ok reports whether the run counts: it finished, exit 0, without errors.
func (r *runResult) ok() bool {
	return r.Failed == "" && r.Result != nil
}

func (r *runResult) summary() string {
	if !r.ok() {
		return "FAILED: " + r.Failed
	}
	b := r.Result
	s := fmt.Sprintf("%10.0f msg/s %8.1f MB/s  p50 %8.1fµs p99 %8.1fµs", b.MessagesPerSec, b.MBPerSec, b.Latency.P50, b.Latency.P99)
	if b.Server != nil {
		if b.Mode == "idle" {
			s += fmt.Sprintf("  held %d, %.0f B/conn", b.Held, b.Server.BytesPerConn)
		} else {
			s += fmt.Sprintf("  server %.2fµs/msg", b.Server.CPUPerMessage)
		}
		if b.ConnectRetries > 0 {
			s += fmt.Sprintf("  (%d connects, %d retried)", b.Connects, b.ConnectRetries)
		}
	}
	return s
}

// runner runs servers and echoctl bench.
type runner struct {
	o    *options
	env  *env
	port int
}

// once starts s, runs m against it, and stops it.
func (r *runner) once(ctx context.Context, s *server, m *mode, round int) *runResult {
	res := &runResult{Server: s.id, Mode: m.id, Round: round}
	r.port++
	port := r.port

	argv := r.env.pinTo("0", s.argv(port))
	srv := exec.Command(argv[0], argv[1:]...)
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so that socat's children stop too
	if err := srv.Start(); err != nil {
		res.Failed = "start server: " + err.Error()
		return res
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer stopServer(srv, exited)

	ready := waitListening
	if s.ready != nil {
		ready = s.ready
	}
	if err := ready(ctx, port, exited); err != nil {
		res.Failed = err.Error()
		return res
	}
	time.Sleep(200 * time.Millisecond) // let the readiness probe's connection go

	bargs := m.benchArgs(r.o.echoctl, s, port)
	bargs = append(bargs, "--server-pid", fmt.Sprint(srv.Process.Pid))
	bargs = r.env.pinTo("1", bargs)
	bctx, cancel := context.WithTimeout(ctx, m.warmup+m.dur+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(bctx, bargs[0], bargs[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res.Stderr = strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
	case err != nil:
		res.Failed = "echoctl bench: " + err.Error()
		return res
	}
	var b benchResult
	if jerr := json.Unmarshal(stdout.Bytes(), &b); jerr != nil {
		res.Failed = fmt.Sprintf("exit %d, no JSON result: %s", res.Exit, firstLine(res.Stderr))
		return res
	}
	b.raw = stdout.Bytes()
	res.Result = &b
	switch {
	case res.Exit != 0:
		res.Failed = fmt.Sprintf("exit %d: %s", res.Exit, firstLine(res.Stderr))
	case b.errorCount() != 0:
		res.Failed = fmt.Sprintf("%d errors: %s", b.errorCount(), b.FirstError)
	}
	return res
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// waitListening waits up to five seconds for something to accept on port.
func waitListening(ctx context.Context, port int, exited <-chan error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("the server exited before listening: %v", werr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %s after 5s: %v", addr(port), err)
		}
	}
}

// stopServer sends SIGTERM to the server's process group, then SIGKILL if
// it is still there three seconds later.
func stopServer(srv *exec.Cmd, exited <-chan error) {
	pgid := srv.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// socat's children may outlive the parent by a moment.
	syscall.Kill(-pgid, syscall.SIGKILL)
}

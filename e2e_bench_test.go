package main_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchInterruptedBySIGINT: Ctrl-C in the middle of a bench run ends
// it at once with exit 1, and both the result and the error line say it was
// interrupted, with the time really measured.
func TestBenchInterruptedBySIGINT(t *testing.T) {
	srv := startServer(t, spec{}, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := spec{}.command(t, ctx, echoctlBin, "bench", "--addr", srv.Addr(), "--warmup", "0s", "--duration", "30s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Without a warmup the run measures from its first connection on.
	srv.WaitLine(regexp.MustCompile(`connection accepted`), readyTimeout)
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("bench did not exit within %v of SIGINT; stderr:\n%s", stopTimeout, &stderr)
	}
	if code := exitCode(err); code != 1 {
		t.Errorf("exit code %d after %v, want 1; stderr:\n%s", code, time.Since(start), &stderr)
	}
	re := regexp.MustCompile(`^echoctl: bench: run interrupted after (\d+\.\d\d)s of the 30\.00s to measure\n$`)
	m := re.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("stderr = %q, want one line matching %s", &stderr, re)
	}
	if s, _ := strconv.ParseFloat(m[1], 64); s >= 30 {
		t.Errorf("measured %ss, want less than the 30s configured", m[1])
	}
	if out := stdout.String(); !strings.Contains(out, "measured     "+m[1]+"s of 30.00s, INTERRUPTED, after a 0.00s warmup") {
		t.Errorf("the result does not say the run was interrupted:\n%s", out)
	}
}

// TestBenchNoServer: bench against a port nothing listens on fails within
// about a second (runProg's bound, 20s, is well under the 30s run the old
// behaviour spent retrying), with one line on stderr and nothing on stdout.
func TestBenchNoServer(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(unusedPort(t))
	r := echoctl(t, spec{}, "bench", "--addr", addr, "--duration", "30s")
	if r.Code != 1 || len(r.Stdout) != 0 {
		t.Errorf("want exit 1 and nothing on stdout:\n%s", r)
	}
	lines := r.Lines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "echoctl: bench: no connection could be opened to "+addr+" in ") || !strings.HasSuffix(lines[0], "connect: connection refused") {
		t.Errorf("want one line saying no connection could be opened:\n%s", r)
	}
}

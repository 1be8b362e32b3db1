package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/testtool"
)

// TestMakeRunCtrlC runs `make run` as the README says, on a free loopback
// port (ECHOCTL_ADDR) with the binary built into a temporary directory,
// and presses Ctrl-C: SIGINT to the whole foreground process group, make
// included, as a terminal sends it. The server must shut down cleanly and
// exit 0, so that make reports no "Error 1" (which `go run` caused: it
// exits 1 when its child is interrupted). make itself, having seen the
// SIGINT too, ends as every make does: killed by it once its child is
// done (the shell shows 130), or 0 where SIGINT was ignored.
func TestMakeRunCtrlC(t *testing.T) {
	testtool.Need(t, "make", "make run")
	repo, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "echoctl")
	// The spec's HOME is a fresh directory: keep Go's caches where they are,
	// or make would download every module and build everything anew.
	goEnv, err := exec.Command("go", "env", "GOMODCACHE", "GOCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	vals := strings.Split(strings.TrimSpace(string(goEnv)), "\n")
	if len(vals) != 3 {
		t.Fatalf("go env printed %q", goEnv)
	}
	s := spec{Env: []string{"ECHOCTL_ADDR=127.0.0.1:0", "GOMODCACHE=" + vals[0], "GOCACHE=" + vals[1], "GOPATH=" + vals[2]}, Dir: repo}
	// make build first, with time for empty caches (CGO_ENABLED=0 and
	// -trimpath compile everything anew, TestMain's build shares nothing
	// with it); make run's own build is then a cached one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := s.command(t, ctx, "make", "--no-print-directory", "build", "BIN="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	cmd := s.command(t, context.Background(), "make", "--no-print-directory", "run", "BIN="+bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, _ := launchProcWithin(t, cmd, syscall.SIGINT, startingUpRE, 3*runTimeout)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT to make's process group: %v", err)
	}
	p.Wait(stopTimeout)
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	stderr := p.Stderr.String()
	interrupted := ws.Signaled() && ws.Signal() == syscall.SIGINT
	if !(ws.Exited() && ws.ExitStatus() == 0) && !interrupted || strings.Contains(stderr, "Error") {
		t.Fatalf("make run after Ctrl-C: %v, want exit 0 or SIGINT and no make error; stdout:\n%s\nstderr:\n%s", cmd.ProcessState, p.Stdout, stderr)
	}
	if !strings.Contains(stderr, "main: closing server") {
		t.Errorf("the server did not shut down gracefully; stderr:\n%s", stderr)
	}
}

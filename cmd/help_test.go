package cmd

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "update the golden files in testdata")

// assertGolden compares got with testdata/name.golden, which -update
// rewrites (as goreleaser's internal/golden does).
func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd -run '^%s$' -update creates it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cmd -run '^%s$' -update rewrites it):\n%s",
			path, t.Name(), lineDiff(string(want), got))
	}
}

// lineDiff shows a few lines of want and got from the first that differs.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "from line %d:\n", i+1)
	for _, l := range w[i:min(len(w), i+5)] {
		fmt.Fprintf(&b, "- %q\n", l)
	}
	for _, l := range g[i:min(len(g), i+5)] {
		fmt.Fprintf(&b, "+ %q\n", l)
	}
	return b.String()
}

func TestHelpGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   [][]string // every way of asking for the same help
	}{
		{"echoctl-help", [][]string{{"--help"}, {"-h"}, {"help"}, {}}},
		{"serve-help", [][]string{{"serve", "--help"}, {"help", "serve"}, {"serve", "-h"}}},
		{"send-help", [][]string{{"send", "--help"}, {"help", "send"}, {"send", "-h"}}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			for i, args := range tt.args {
				r := run(t, context.Background(), args...)
				if r.code != ExitOK || r.stderr != "" {
					t.Errorf("echoctl %q: exit code %d, stderr %q; want 0 and nothing", args, r.code, r.stderr)
				}
				if i == 0 {
					assertGolden(t, tt.golden, r.stdout)
					continue
				}
				if first := run(t, context.Background(), tt.args[0]...).stdout; r.stdout != first {
					t.Errorf("echoctl %q differs from echoctl %q:\n%s", args, tt.args[0], lineDiff(first, r.stdout))
				}
			}
		})
	}
}

// TestHelpDocumentsExitCodes: the exit codes are part of the interface.
func TestHelpDocumentsExitCodes(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"send", "--help"}} {
		out := run(t, context.Background(), args...).stdout
		for _, code := range []int{ExitOK, ExitNetwork, ExitUsage, ExitMismatch} {
			if !strings.Contains(out, fmt.Sprintf("\n  %d  ", code)) {
				t.Errorf("echoctl %q does not document exit code %d", args, code)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, context.Background(), args...)
			if r.code != ExitOK || r.stderr != "" {
				t.Errorf("exit code %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "echoctl dev (commit none") {
				t.Errorf("stdout = %q, want it to start with %q", r.stdout, "echoctl dev (commit none")
			}
			if want := versionString() + "\n"; r.stdout != want || strings.Count(r.stdout, "\n") != 1 {
				t.Errorf("stdout = %q, want the one line %q", r.stdout, want)
			}
		})
	}
}

// TestUnknownHelpTopicAndShell: `help TOPIC` and `completion SHELL` with a
// topic or shell that does not exist are usage errors (cobra's own commands
// print help and exit 0), while the real ones still work.
func TestUnknownHelpTopicAndShell(t *testing.T) {
	tests := []struct {
		args      []string
		code      int
		stderr    string // the one line wanted, for errors
		stdoutHas string
	}{
		{[]string{"help", "bogus"}, ExitUsage, `echoctl: unknown help topic "bogus": "echoctl help" lists the commands`, ""},
		{[]string{"help", "serve", "extra"}, ExitUsage, `echoctl: unknown help topic "serve extra": "echoctl help" lists the commands`, ""},
		{[]string{"completion", "tcsh"}, ExitUsage, `echoctl: unknown shell "tcsh" for "echoctl completion": want one of bash, fish, powershell, zsh`, ""},
		{[]string{"help", "bench"}, ExitOK, "", "Load-test any echo server"},
		{[]string{"completion"}, ExitOK, "", "Generate the autocompletion script"},
		{[]string{"completion", "bash"}, ExitOK, "", "bash completion V2 for echoctl"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, context.Background(), tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code %d, want %d", r.code, tt.code)
			}
			if want := tt.stderr; want != "" && r.stderr != want+"\n" || want == "" && r.stderr != "" {
				t.Errorf("stderr = %q, want %q", r.stderr, want)
			}
			if tt.stdoutHas == "" && r.stdout != "" || !strings.Contains(r.stdout, tt.stdoutHas) {
				t.Errorf("stdout = %.200q, want it to hold %q", r.stdout, tt.stdoutHas)
			}
		})
	}
}

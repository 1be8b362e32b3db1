package cmd

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/echoctl/echoctl/internal/testtool"
)

// committedDocs is the CLI reference that `make docs` writes, from cmd/.
const committedDocs = "../docs/cli"

// readDir returns the regular files in dir by name.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

// gen runs `echoctl gen args...` in-process and fails the test unless it
// succeeds quietly.
func gen(t *testing.T, args ...string) {
	t.Helper()
	r := run(t, context.Background(), append([]string{"gen"}, args...)...)
	if r.code != ExitOK || r.stdout != "" || r.stderr != "" {
		t.Fatalf("echoctl gen %q: exit code %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
	}
}

// TestDocsCLIUpToDate fails when docs/cli/ is not what the command tree
// generates now: a flag, command or help text changed without `make docs`.
func TestDocsCLIUpToDate(t *testing.T) {
	dir := t.TempDir()
	gen(t, "docs", "--dir", dir)
	want, got := readDir(t, dir), readDir(t, committedDocs)
	if len(want) < 2 {
		t.Fatalf("gen docs wrote %d pages", len(want))
	}
	for name, page := range want {
		old, ok := got[name]
		switch {
		case !ok:
			t.Errorf("docs/cli/%s is missing: run `make docs`", name)
		case old != page:
			t.Errorf("docs/cli/%s is stale: run `make docs`; it differs from what gen docs writes:\n%s", name, lineDiff(page, old))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && strings.HasPrefix(name, "echoctl") {
			t.Errorf("docs/cli/%s documents no command: run `make docs`, which removes it", name)
		}
	}
}

// TestGenDocsRemovesStalePages checks that a removed command's page goes.
func TestGenDocsRemovesStalePages(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "echoctl_gone.md"), "old")
	writeFile(t, filepath.Join(dir, "README.md"), "kept")
	gen(t, "docs", "--dir", dir)
	files := readDir(t, dir)
	if _, ok := files["echoctl_gone.md"]; ok {
		t.Error("echoctl_gone.md was not removed")
	}
	if files["README.md"] != "kept" {
		t.Error("README.md was touched")
	}
	for _, name := range []string{"echoctl.md", "echoctl_serve.md", "echoctl_send.md", "echoctl_version.md", "echoctl_completion_bash.md"} {
		if _, ok := files[name]; !ok {
			t.Errorf("gen docs wrote no %s", name)
		}
	}
	if _, ok := files["echoctl_gen.md"]; ok {
		t.Error("the hidden gen command is documented")
	}
	if strings.Contains(files["echoctl.md"], "Auto generated") {
		t.Error("echoctl.md has cobra's dated auto-generated tag")
	}
}

// TestGenMan checks that the man pages are one a documented command,
// compressed reproducibly, dated by --date, and free of roff warnings
// (groff).
func TestGenMan(t *testing.T) {
	groff := testtool.Need(t, "groff", "checks that the man pages render without warnings")
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		gen(t, "man", "--dir", dir, "--gzip", "--date", "2026-11-25T04:29:55Z")
	}
	first, second := readDir(t, dirs[0]), readDir(t, dirs[1])
	mdDir := t.TempDir()
	gen(t, "docs", "--dir", mdDir)
	var wantNames []string
	for md := range readDir(t, mdDir) {
		wantNames = append(wantNames, strings.ReplaceAll(strings.TrimSuffix(md, ".md"), "_", "-")+".1.gz")
	}
	var names []string
	for name := range first {
		names = append(names, name)
	}
	slices.Sort(names)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Fatalf("man pages %q, want one a documented command: %q", names, wantNames)
	}
	for _, name := range names {
		if first[name] != second[name] {
			t.Errorf("%s differs between two runs: not reproducible", name)
		}
		zr, err := gzip.NewReader(strings.NewReader(first[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		page, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		title := strings.ToUpper(strings.TrimSuffix(name, ".1.gz"))
		if want := `.TH "` + title + `" "1" "Nov 2026" "echoctl `; !bytes.Contains(page, []byte(want)) {
			t.Errorf("%s has no header %q:\n%.300s", name, want, page)
		}
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = bytes.NewReader(page)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff on %s: %v\n%s", name, err, out)
		}
	}

	plain := t.TempDir()
	gen(t, "man", "--dir", plain, "--date", "2026-11-25")
	if _, err := os.Stat(filepath.Join(plain, "echoctl-serve.1")); err != nil {
		t.Errorf("without --gzip: %v", err)
	}
}

func TestGenUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		epoch string // SOURCE_DATE_EPOCH
	}{
		{args: []string{"gen"}},
		{args: []string{"gen", "man", "--date", "yesterday", "--dir", "out"}},
		{args: []string{"gen", "docs", "extra"}},
		{args: []string{"gen", "man", "--dir", "out"}, epoch: "abc"},
		{args: []string{"gen", "man", "--dir", "out"}, epoch: "-1"},
		{args: []string{"gen", "man", "--dir", "out"}, epoch: "99999999999999999"},
		{args: []string{"gen", "man", "--dir", ""}},
		{args: []string{"gen", "docs", "--dir", ""}},
		{args: []string{"gen", "completions", "--dir", ""}},
	} {
		t.Run(strings.Join(tt.args, " ")+" "+tt.epoch, func(t *testing.T) {
			t.Chdir(t.TempDir())
			t.Setenv("SOURCE_DATE_EPOCH", tt.epoch)
			if r := run(t, context.Background(), tt.args...); r.code != ExitUsage || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit code %d, stderr %q; want %d, one line", r.code, r.stderr, ExitUsage)
			}
			if _, err := os.Stat("out"); err == nil {
				t.Errorf("wrote out/ before refusing")
			}
		})
	}
}

// TestGenCompletions checks that the packaged scripts are what `echoctl
// completion SHELL` prints.
func TestGenCompletions(t *testing.T) {
	dir := t.TempDir()
	gen(t, "completions", "--dir", dir)
	files := readDir(t, dir)
	if len(files) != len(completionScripts) {
		t.Errorf("wrote %d files, want %d", len(files), len(completionScripts))
	}
	for _, s := range completionScripts {
		r := run(t, context.Background(), "completion", s.shell)
		if r.code != ExitOK || r.stdout == "" {
			t.Fatalf("echoctl completion %s: exit code %d, stderr %q", s.shell, r.code, r.stderr)
		}
		if files[s.file] != r.stdout {
			t.Errorf("%s differs from `echoctl completion %s`", s.file, s.shell)
		}
	}
}

// TestCompletionBash loads `echoctl completion bash` into bash, as a user's
// shell does, and completes with the built binary.
func TestCompletionBash(t *testing.T) {
	bash := testtool.Need(t, "bash", "loads the completion script as a user's shell does")
	r := run(t, context.Background(), "completion", "bash")
	if r.code != ExitOK {
		t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
	}
	script := writeFile(t, filepath.Join(t.TempDir(), "echoctl.bash"), r.stdout)

	out, err := exec.Command(bash, "--norc", "--noprofile", "-c", `set -e; source "$1"; complete -p echoctl`, "bash", script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "__start_echoctl echoctl") {
		t.Fatalf("bash does not load the script: %v\n%s", err, out)
	}

	if testing.Short() {
		t.Skip("-short: not building the binary to complete with")
	}
	bin := buildEchoctl(t)
	complete := func(words ...string) []string {
		t.Helper()
		// What bash sets before it calls the completion function for
		// "echoctl WORDS<TAB>".
		const body = `if [ -r /usr/share/bash-completion/bash_completion ]; then
  source /usr/share/bash-completion/bash_completion
else # the one function of the bash-completion package that the script needs
  _get_comp_words_by_ref() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
fi
source "$1"; shift
COMP_WORDS=(echoctl "$@"); COMP_CWORD=$#; COMP_LINE="echoctl $*"; COMP_POINT=${#COMP_LINE}
__start_echoctl echoctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, append([]string{"--norc", "--noprofile", "-c", body, "bash", script}, words...)...)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("completing %q: %v\n%s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	if got := complete("se"); !slices.Contains(got, "serve") || !slices.Contains(got, "send") || slices.Contains(got, "gen") {
		t.Errorf("echoctl se<TAB> = %q, want send and serve", got)
	}
	if got := complete("serve", "--shutdown-t"); !slices.Contains(got, "--shutdown-timeout") {
		t.Errorf("echoctl serve --shutdown-t<TAB> = %q, want --shutdown-timeout", got)
	}
}

// buildEchoctl builds the echoctl binary into a temporary directory, with
// the given go build flags, and returns its path.
func buildEchoctl(t *testing.T, flags ...string) string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to build echoctl with")
		}
	}
	bin := filepath.Join(t.TempDir(), "echoctl")
	args := append(append([]string{"build", "-o", bin}, flags...), "..")
	cmd := exec.Command(gobin, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %q: %v\n%s", args, err, out)
	}
	return bin
}

// TestCompleteFlagValues: the flags that take one of a few words complete
// with those words, not with file names.
func TestCompleteFlagValues(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--log-format", ""}, "text\nconsole\njson\n:4\n"},
		{[]string{"ping", "--log-level", "w"}, "trace\ndebug\ninfo\nwarn\nerror\ndisabled\n:4\n"},
		{[]string{"bench", "--mode", ""}, "pingpong\nstream\nconnrate\nidle\n:4\n"},
		{[]string{"send", "--proxy-protocol", ""}, "v1\nv2\n:4\n"},
		{[]string{"serve", "--proxy-protocol", ""}, "on\noff\n:4\n"},
	} {
		r := run(t, context.Background(), append([]string{"__complete"}, tt.args...)...)
		if r.code != ExitOK || r.stdout != tt.want {
			t.Errorf("complete %q: exit %d, %q; want %q", tt.args, r.code, r.stdout, tt.want)
		}
	}
}

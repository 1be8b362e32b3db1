package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docsNotRun are the error lines that README.md and docs/ show but that
// TestDocumentedErrors cannot produce from a command alone, each with the
// reason and the test that covers the message instead. Every other
// "echoctl: ..." line in a code block must follow the `$ echoctl ...`
// command that prints it.
var docsNotRun = map[string]string{
	"echoctl: invalid KEY VALUE from SOURCE: REASON":                                                                                                        "the format, not a message",
	`echoctl: invalid tls-key "other-key.pem" from flag --tls-key: the private key does not match the certificate`:                                          "needs PEM files: TestRunInvalidTransport in cmd",
	`echoctl: invalid tls-cert "fifo.pem" from flag --tls-cert: not a regular file but a named pipe (FIFO)`:                                                 "needs a FIFO: TestLoadRefusesUnboundedFiles",
	`echoctl: invalid tls-cert "big.pem" from flag --tls-cert: larger than 4 MiB, too large for a PEM file`:                                                 "needs a 4 MiB file: TestLoadRefusesUnboundedFiles",
	"echoctl: connect 127.0.0.1:10070: i/o timeout":                                                                                                         "needs a peer that never answers a SYN, an address outside loopback that the tests may not reach",
	`echoctl: connect nosuchhost.invalid:10000: echo: resolve "nosuchhost.invalid": lookup nosuchhost.invalid on 192.0.2.53:53: no such host`:               "would ask the real resolver: TestClientResolveErrors injects one",
	`echoctl: echo: resolve "nosuchhost.invalid": lookup nosuchhost.invalid on 192.0.2.53:53: no such host`:                                                 "would ask the real resolver: TestListenResolvedName injects one",
	"echoctl: echo 127.0.0.1:10043: context canceled":                                                                                                       "needs SIGINT while send waits: TestClientContextCanceled",
	"echoctl: echo differs from what was sent: the server closed after 50 bytes, before the echo was complete":                                              "needs serve to reach its shutdown deadline under a never-ending --stdin; the message: the short10 example in exit-codes.md and TestSendMismatch in cmd; the cut-short echo: TestShutdownTimeoutWhileSending",
	"echoctl: echo 127.0.0.1:10001: connection reset by the server after 1024 of 4096 bytes echoed":                                                         "needs serve --fault-reset-after: TestFaultsSeenBySend",
	"echoctl: echo differs from what was sent: the server closed after 1024 bytes, before the echo was complete":                                            "needs serve --fault-close-after: TestFaultsSeenBySend",
	"echoctl: echo 127.0.0.1:10006: server closed the connection before echoing anything":                                                                   "needs serve --fault-refuse: TestFaultsSeenBySend",
	`echoctl: invalid addr "127.0.0.1:10000" from flag --addr: overlaps ":10000": one of them listens on every address at port 10000, the other's included`: "its two ports must stay one, which the free ports the test gives each loopback address would split: TestLoadAddrList in cmd",
}

// docsNotRunPrefixes are like docsNotRun for families of lines.
var docsNotRunPrefixes = map[string]string{
	"echoctl: bench: run interrupted after ": "needs Ctrl-C during the run: TestBenchInterruptedBySIGINT",
	"echoctl: bench: the run failed: ":       "its counts and kinds vary from run to run: TestBenchRunErrorsExit1 in cmd",
}

// docsVarying are the prefixes of error lines whose numbers vary from run
// to run (times, counts): they are compared with every number left out.
var docsVarying = map[string]string{
	"echoctl: bench: no connection could be opened": "how long it tried",
}

// docDigitsRE matches a number, as docsVarying leaves it out.
var docDigitsRE = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

// varyingReason reports whether line's numbers vary, and why.
func varyingReason(line string) (string, bool) {
	for p, r := range docsVarying {
		if strings.HasPrefix(line, p) {
			return r, true
		}
	}
	return "", false
}

// TestDocumentedErrors runs every error message shown in a code block of
// README.md and docs/*.md: the `$ echoctl ...` line before it, with the
// files the block shows (`$ cat FILE` and the lines after it) in a fresh
// directory, loopback ports in the command replaced by free ones (or by a
// port held open, when the message is "address already in use", or by a
// misbehaving server that a `<!-- servers: PORT=KIND -->` line before the
// block names, from docServerKinds), and
// compares the last line of standard error with the documented line, and
// the exit code with a following `$ echo $?`. A documented error line with
// no command before it fails the test, unless docsNotRun says why it cannot
// be run; so does a docsNotRun entry that the docs no longer show.
func TestDocumentedErrors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md"}, files...)
	seen := map[string]bool{}
	ran := 0
	for _, file := range files {
		for _, b := range readDocBlocks(t, file) {
			for _, ex := range b.examples {
				line := ex.want
				if reason, ok := notRunReason(line); ok {
					seen[line] = true
					t.Logf("%s:%d: not run (%s): %s", file, ex.line, reason, line)
					continue
				}
				if ex.cmd == "" {
					t.Errorf("%s:%d: %q has no `$ echoctl ...` command before it in its code block: add the command that prints it, or say in docsNotRun why it cannot be run", file, ex.line, line)
					continue
				}
				ran++
				t.Run(fmt.Sprintf("%s:%d", filepath.Base(file), ex.line), func(t *testing.T) {
					t.Parallel()
					runDocExample(t, b, ex)
				})
			}
		}
	}
	for line := range docsNotRun {
		if !seen[line] {
			t.Errorf("docsNotRun lists %q, which no doc shows any more: remove it", line)
		}
	}
	if ran < 20 {
		t.Errorf("ran %d documented error examples, want at least 20: is the parser broken?", ran)
	}
}

// notRunReason reports whether line is one that is not run, and why.
func notRunReason(line string) (string, bool) {
	if r, ok := docsNotRun[line]; ok {
		return r, true
	}
	for p, r := range docsNotRunPrefixes {
		if strings.HasPrefix(line, p) {
			return r, true
		}
	}
	return "", false
}

// A docBlock is one fenced code block of a doc: the files it shows with
// `$ cat`, the servers its examples talk to, and its error examples.
type docBlock struct {
	files    map[string]string
	servers  map[string]string // documented port -> fake server kind
	examples []docExample
}

// docServersRE matches the HTML comment that may stand just before a code
// block, invisible on the rendered page, naming the misbehaving servers
// its examples talk to: <!-- servers: 10011=silent 10012=reset -->.
var docServersRE = regexp.MustCompile(`^<!-- servers: (.*) -->$`)

// docServerKinds are the fake servers a doc example can name, by what
// they do with each connection.
var docServerKinds = map[string]func(c *net.TCPConn, stop <-chan struct{}){
	// silent reads everything, answers nothing, and keeps the connection
	// open until the test ends.
	"silent": func(c *net.TCPConn, stop <-chan struct{}) {
		io.Copy(io.Discard, c)
		<-stop
	},
	// echo is a plain echo server.
	"echo": func(c *net.TCPConn, _ <-chan struct{}) {
		echoMapped(c, func(b []byte) []byte { return b })
	},
	// reset5 reads to the end, echoes the first 5 bytes, then resets the
	// connection.
	"reset5": func(c *net.TCPConn, _ <-chan struct{}) {
		all, _ := io.ReadAll(c)
		c.Write(all[:min(len(all), 5)])
		c.SetLinger(0)
	},
	// close reads what arrives and closes without echoing a byte.
	"close": func(c *net.TCPConn, _ <-chan struct{}) {
		c.Read(make([]byte, 64<<10))
	},
	// upper echoes in upper case.
	"upper": func(c *net.TCPConn, _ <-chan struct{}) {
		echoMapped(c, func(b []byte) []byte { return bytes.ToUpper(b) })
	},
	// flip echoes every byte with its lowest bit flipped.
	"flip": func(c *net.TCPConn, _ <-chan struct{}) {
		echoMapped(c, func(b []byte) []byte {
			for i := range b {
				b[i] ^= 1
			}
			return b
		})
	},
	// newline echoes, then adds a newline after the client half-closes.
	"newline": func(c *net.TCPConn, _ <-chan struct{}) {
		echoMapped(c, func(b []byte) []byte { return b })
		c.Write([]byte("\n"))
	},
	// greeting writes a greeting line, "backend-2", then echoes (serve
	// --greeting).
	"greeting": func(c *net.TCPConn, _ <-chan struct{}) {
		c.Write([]byte("backend-2\n"))
		echoMapped(c, func(b []byte) []byte { return b })
	},
	// short10 reads to the end, echoes the first 10 bytes and closes.
	"short10": func(c *net.TCPConn, _ <-chan struct{}) {
		all, _ := io.ReadAll(c)
		c.Write(all[:min(len(all), 10)])
	},
}

// echoMapped writes back f of each read until end of stream.
func echoMapped(c *net.TCPConn, f func([]byte) []byte) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(f(buf[:n])); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A docExample is an error line and the command before it.
type docExample struct {
	line     int    // of the error line
	cmd      string // the command after "$ ", "" if none
	want     string // the error line
	wantCode int    // from a following `$ echo $?`, -1 if none
}

// readDocBlocks parses file's fenced code blocks.
func readDocBlocks(t *testing.T, file string) []*docBlock {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks  []*docBlock
		cur     *docBlock
		cmd     string // the last command, until an error line uses it
		catFile string // the file whose lines follow `$ cat FILE`
		last    *docExample
		servers map[string]string
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if strings.HasPrefix(trimmed, "```") {
			if cur == nil {
				cur = &docBlock{files: map[string]string{}, servers: servers}
				blocks = append(blocks, cur)
			} else {
				cur, cmd, catFile, last = nil, "", "", nil
			}
			servers = nil
			continue
		}
		if cur == nil {
			if m := docServersRE.FindStringSubmatch(trimmed); m != nil {
				servers = map[string]string{}
				for _, f := range strings.Fields(m[1]) {
					port, kind, _ := strings.Cut(f, "=")
					if docServerKinds[kind] == nil {
						t.Errorf("%s:%d: unknown server kind %q", file, n, kind)
					}
					servers[port] = kind
				}
			} else if trimmed != "" {
				servers = nil
			}
			continue
		}
		if c, ok := strings.CutPrefix(text, "$ "); ok {
			catFile = ""
			switch {
			case strings.HasPrefix(c, "cat ") && !strings.ContainsAny(c, "|;>"):
				catFile = strings.TrimSpace(strings.TrimPrefix(c, "cat "))
				cur.files[catFile] = ""
			case strings.TrimSpace(c) == "echo $?" && last != nil:
				if sc.Scan() {
					n++
					if code, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
						last.wantCode = code
					}
				}
			default:
				cmd = c
				last = nil
			}
			continue
		}
		if catFile != "" {
			cur.files[catFile] += text + "\n"
			continue
		}
		if strings.HasPrefix(text, "echoctl: ") {
			cur.examples = append(cur.examples, docExample{line: n, cmd: cmd, want: text, wantCode: -1})
			last = &cur.examples[len(cur.examples)-1]
			cmd = ""
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// docPortRE matches a loopback address with a port that a doc example may
// use; the port is replaced by a free one when the example runs.
var docPortRE = regexp.MustCompile(`(127\.0\.0\.1|localhost|\[::1\]):(\d{4,5})\b`)

// runDocExample runs ex's command in a fresh directory holding b's files.
func runDocExample(t *testing.T, b *docBlock, ex docExample) {
	if strings.Contains(ex.cmd, "nosuchhost") {
		t.Fatalf("%q would ask the real resolver: list its line in docsNotRun", ex.cmd)
	}
	// Each documented port becomes a free loopback port: refused, or held
	// open by a listener when the message is about a port in use.
	ports := map[string]string{}
	// subst replaces the ports of s; only those of the command and the
	// files are new ports (the servers the block names, else free ones), the
	// error line's others are the program's own
	// (such as the default port in an example of the syntax).
	create := true
	subst := func(s string) string {
		return docPortRE.ReplaceAllStringFunc(s, func(m string) string {
			sub := docPortRE.FindStringSubmatch(m)
			p, _ := strconv.Atoi(sub[2])
			if p < 1024 || p > 65535 {
				return m
			}
			real, ok := ports[sub[2]]
			if !ok && !create {
				return m
			}
			if !ok {
				if kind, isServer := b.servers[sub[2]]; isServer {
					_, real, _ = net.SplitHostPort(fakeServer(t, docServerKinds[kind]))
				} else {
					real = strconv.Itoa(docPort(t, strings.Contains(ex.want, "address already in use")))
				}
				ports[sub[2]] = real
			}
			return sub[1] + ":" + real
		})
	}
	dir := t.TempDir()
	for name, content := range b.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(subst(content)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, args, stdout, err := shellWords(subst(ex.cmd))
	if err != nil {
		t.Fatalf("command %q: %v", ex.cmd, err)
	}
	if len(args) == 0 || args[0] != "echoctl" {
		t.Fatalf("command %q does not run echoctl", ex.cmd)
	}
	create = false
	want := subst(ex.want)
	var r result
	if stdout == "" {
		r = echoctl(t, spec{Env: env, Dir: dir}, args[1:]...)
	} else {
		if !filepath.IsAbs(stdout) {
			stdout = filepath.Join(dir, stdout)
		}
		r = echoctlStdout(t, spec{Env: env, Dir: dir}, stdout, args[1:]...)
	}
	lines := r.Lines()
	got := ""
	if len(lines) > 0 {
		got = lines[len(lines)-1]
	}
	if reason, ok := varyingReason(want); ok {
		t.Logf("comparing with the numbers left out (%s)", reason)
		got, want = docDigitsRE.ReplaceAllString(got, "N"), docDigitsRE.ReplaceAllString(want, "N")
	}
	if got != want {
		t.Errorf("$ %s\nthe doc shows, as the last line of standard error:\n%s\ngot:\n%s", ex.cmd, want, r)
	}
	if ex.wantCode >= 0 && r.Code != ex.wantCode {
		t.Errorf("$ %s: exit %d, the doc says %d", ex.cmd, r.Code, ex.wantCode)
	}
	if r.Code == 0 {
		t.Errorf("$ %s: exit 0 with an error line", ex.cmd)
	}
}

// docPort returns a free loopback port: closed (connections to it are
// refused) or, with held, listened on until the test ends.
func docPort(t *testing.T, held bool) int {
	t.Helper()
	if !held {
		return unusedPort(t)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// shellWords splits a documented command line as sh would, for the little
// the docs use: NAME=value prefixes, single and double quotes, backslash
// escapes, a standard output redirection (`>FILE`, `> FILE`: returned as
// stdout), and a trailing comment or `; more` (dropped). Pipes and other
// redirections are refused: such a command is not an error example.
func shellWords(line string) (env, args []string, stdout string, err error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune // ' or " while quoted
	)
	rs := []rune(line)
loop:
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case r == '#' && !in, r == ';':
			break loop
		case r == '>' && !in && stdout == "" && i+1 < len(rs) && rs[i+1] != '>' && rs[i+1] != '&':
			j := i + 1
			for j < len(rs) && rs[j] == ' ' {
				j++
			}
			k := j
			for k < len(rs) && !strings.ContainsRune(" \t;#|&<>'\"", rs[k]) {
				k++
			}
			if k == j {
				return nil, nil, "", errors.New("> without a file")
			}
			stdout, i = string(rs[j:k]), k-1
		case r == '|' || r == '<' || r == '>' || r == '&':
			return nil, nil, "", errors.New("pipes and redirections other than >FILE are not supported")
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, nil, "", errors.New("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
		env, words = append(env, words[0]), words[1:]
	}
	return env, words, stdout, nil
}

// TestShellWords checks the splitter on the forms the docs use.
func TestShellWords(t *testing.T) {
	tests := []struct {
		line      string
		env, args []string
		stdout    string
		err       bool
	}{
		{line: `echoctl send`, args: []string{"echoctl", "send"}},
		{line: `ECHOCTL_MESSAGES='["a", 1]' echoctl send`, env: []string{`ECHOCTL_MESSAGES=["a", 1]`}, args: []string{"echoctl", "send"}},
		{line: `A=1 B="x y" echoctl serve --addr ''   # a comment`, env: []string{"A=1", "B=x y"}, args: []string{"echoctl", "serve", "--addr", ""}},
		{line: `echoctl send "a \"b\"" c\ d; echo`, args: []string{"echoctl", "send", `a "b"`, "c d"}},
		{line: `echoctl send 2>/dev/null`, err: true},
		{line: `echoctl send > /dev/full`, args: []string{"echoctl", "send"}, stdout: "/dev/full"},
		{line: `echoctl send a >out.txt # x`, args: []string{"echoctl", "send", "a"}, stdout: "out.txt"},
		{line: `echoctl send >>out.txt`, err: true},
		{line: `echoctl send | od -c`, err: true},
		{line: `echoctl send 'open`, err: true},
	}
	for _, tt := range tests {
		env, args, stdout, err := shellWords(tt.line)
		if (err != nil) != tt.err {
			t.Errorf("shellWords(%q) error = %v, want error %v", tt.line, err, tt.err)
			continue
		}
		if fmt.Sprint(env) != fmt.Sprint(tt.env) || fmt.Sprint(args) != fmt.Sprint(tt.args) || stdout != tt.stdout {
			t.Errorf("shellWords(%q) = %q, %q, %q; want %q, %q, %q", tt.line, env, args, stdout, tt.env, tt.args, tt.stdout)
		}
	}
}

// echoctlStdout is echoctl with standard output written to the file at
// path, as `> path` does: a real file descriptor, so that /dev/full fails
// as it does in a shell.
func echoctlStdout(t *testing.T, s spec, path string, args ...string) result {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := s.command(t, ctx, echoctlBin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	start := time.Now()
	err = cmd.Run()
	r := result{Code: exitCode(err), Stderr: stderr.Bytes(), Elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("echoctl %q did not finish within %v:\n%s", args, runTimeout, r)
	}
	return r
}

package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

// benchRun runs echoctl in-process with a fresh command tree and returns
// its exit code, standard output and standard error.
func benchRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// benchIsolate keeps the environment and config files of the machine out
// of the test: no ECHOCTL_* variables and no config file to find.
func benchIsolate(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "ECHOCTL_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Chdir(t.TempDir())
}

// short keeps each run that reaches a server under a second. Its warmup
// is long enough for every connection to open on a machine busy with the
// other packages' tests under the race detector (a pingpong run fails when
// one is not open once measuring begins): with 100 ms, one of two
// connections through a test balancer sometimes was not.
var short = []string{"--warmup", "500ms", "--duration", "300ms"}

func TestBenchBadFlags(t *testing.T) {
	benchIsolate(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"conns zero", []string{"--conns", "0"}, "invalid --conns 0"},
		{"addr twice", []string{"--addr", "127.0.0.1:1", "--addr", "127.0.0.1:2"}, `bench connects to one address; --addr is given twice (first "127.0.0.1:1")`},
		{"conns negative", []string{"--conns", "-5"}, "invalid --conns -5"},
		{"conns not a number", []string{"--conns", "many"}, `invalid argument "many"`},
		{"size zero", []string{"--size", "0"}, "invalid --size 0"},
		{"size too big", []string{"--size", "16777217"}, "invalid --size 16777217"},
		{"pipeline", []string{"--pipeline", "0"}, "invalid --pipeline 0"},
		{"chunk", []string{"--chunk", "0"}, "invalid --chunk 0"},
		{"size in stream mode", []string{"--mode", "stream", "--size", "100"}, "invalid --size 100 with --mode stream: only pingpong sends --size-byte messages"},
		{"pipeline in connrate mode", []string{"--mode", "connrate", "--pipeline", "2"}, "invalid --pipeline 2 with --mode connrate: only pingpong has messages outstanding"},
		{"chunk in pingpong mode", []string{"--chunk", "1000"}, "invalid --chunk 1000 with --mode pingpong: only stream writes --chunk bytes"},
		{"rate negative", []string{"--rate", "-1"}, "invalid --rate -1"},
		{"rate not a number", []string{"--rate", "NaN"}, "invalid --rate NaN"},
		{"rate in stream mode", []string{"--rate", "5", "--mode", "stream"}, "invalid --rate with --mode stream"},
		{"rate too small for a message", []string{"--rate", "0.0001", "--duration", "1s"}, "invalid --rate 0.0001 with --duration 1s: sends no message in the measured duration"},
		{"rate too small to underflow", []string{"--rate", "1e-300", "--duration", "1s"}, "invalid --rate 1e-300 with --duration 1s: sends no message"},
		{"hgrm and html one file", []string{"--addr", "127.0.0.1:1", "--hgrm", "out", "--html", "out"}, `invalid --html "out": --hgrm writes that file too`},
		{"hgrm and html one file, spelt apart", []string{"--addr", "127.0.0.1:1", "--hgrm", "out", "--html", "./x/../out"}, `invalid --html "./x/../out": --hgrm writes that file too`},
		{"busy poll too long", []string{"--busy-poll", "1s"}, `invalid busy-poll "1s" from flag --busy-poll`},
		{"busy poll with more connections than CPUs", []string{"--busy-poll", "1ms", "--conns", "100000"}, "busy poll with 100000 connections"},
		{"mode", []string{"--mode", "flood"}, `invalid --mode "flood"`},
		{"part in pingpong mode", []string{"--part", "x"}, "invalid --part with --mode pingpong: only connrate writes parts"},
		{"parts empty", []string{"--mode", "connrate", "--part", "", "--part", ""}, "invalid --part: the parts must hold from 1 to 16777216 bytes in all"},
		{"udp without a rate", []string{"--addr", "udp://127.0.0.1:7"}, `invalid --rate 0 with --addr udp://127.0.0.1:7: a udp:// address needs a rate`},
		{"udp in stream mode", []string{"--addr", "udp://127.0.0.1:7", "--mode", "stream"}, `invalid --mode "stream" with --addr udp://127.0.0.1:7`},
		{"udp past the IPv4 limit", []string{"--addr", "udp://127.0.0.1:7", "--rate", "10", "--size", "65508"}, `invalid --size 65508 with --addr udp://127.0.0.1:7: a datagram must hold from 32 bytes`},
		{"udp past the IPv6 limit", []string{"--addr", "udp://[::1]:7", "--rate", "10", "--size", "65528"}, `to 65527 (the IPv6 limit)`},
		{"udp with a greeting", []string{"--addr", "udp://127.0.0.1:7", "--rate", "10", "--greeting"}, `invalid --greeting with --addr udp://127.0.0.1:7`},
		{"tls resume over tcp", []string{"--tls-resume"}, `invalid --tls-resume with --addr localhost:10000`},
		{"tls ca missing", []string{"--addr", "tls://127.0.0.1:7", "--tls-ca", "/nonexistent/ca.pem"}, `/nonexistent/ca.pem`},
		{"unix relative path", []string{"--addr", "unix://x.sock"}, `invalid addr`},
		{"duration zero", []string{"--duration", "0s"}, "invalid --duration 0s: must be a positive duration, such as 500ms, 10s or 1m"},
		{"duration negative", []string{"--duration", "-1s"}, "invalid --duration -1s: must be a positive duration"},
		{"duration not a duration", []string{"--duration", "3"}, `invalid argument "3"`},
		{"warmup negative", []string{"--warmup", "-1s"}, "invalid --warmup -1s: must be a duration of 0 or more, such as 500ms, 10s or 1m (0 for no warmup)"},
		{"op timeout", []string{"--op-timeout", "0s"}, "invalid --op-timeout 0s: must be a positive duration, such as 500ms, 10s or 1m"},
		{"server pid negative", []string{"--server-pid", "-1"}, "invalid --server-pid -1"},
		{"server pid gone", []string{"--server-pid", "1073741824"}, "invalid --server-pid 1073741824: no process to measure"},
		{"addr without port", []string{"--addr", "localhost"}, "invalid addr"},
		{"addr port zero", []string{"--addr", "127.0.0.1:0"}, "port 0"},
		{"conns over the open-file limit", []string{"--conns", "1000000"}, "open files"},
		{"unknown flag", []string{"--bogus"}, "unknown flag: --bogus"},
		{"argument", []string{"extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := benchRun(t, append([]string{"bench"}, tt.args...)...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d", code, ExitUsage)
			}
			if !strings.HasPrefix(stderr, "echoctl: ") || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one line about %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestBenchAgainstEchoServer(t *testing.T) {
	benchIsolate(t)
	srv := echotest.NewServer(t, nil)
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"pingpong", []string{"--conns", "4"}, []string{"pingpong: 4 connections, 128 B messages, pipeline 1", "messages/s", "errors", "none"}},
		{"stream", []string{"--mode", "stream", "--chunk", "4096"}, []string{"stream: 1 connection, 4 KiB writes", "MB/s"}},
		{"pingpong busy-polling", []string{"--busy-poll", "1ms"}, []string{"pingpong: 1 connection, 128 B messages, pipeline 1, reads busy-polling for 1ms", "messages/s"}},
		{"connrate", []string{"--mode", "connrate", "--conns", "2", "--server-pid", pid}, []string{"2 workers, each cycle echoing 46 B written in 3 parts", "connections/s", "per cycle"}},
		{"connrate in one part", []string{"--mode", "connrate", "--conns", "2", "--part", "This is the message."}, []string{"2 workers, each cycle echoing 20 B written in 1 part", "connections/s"}},
		{"idle", []string{"--mode", "idle", "--conns", "50", "--server-pid", pid}, []string{"held", "50 of 50", "bytes per connection"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"bench", "--addr", srv.Addr}, short...), tt.args...)
			code, stdout, stderr := benchRun(t, args...)
			if code != ExitOK || stderr != "" {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("table lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}

func TestBenchJSON(t *testing.T) {
	benchIsolate(t)
	srv := echotest.NewServer(t, nil)
	code, stdout, stderr := benchRun(t, append([]string{"bench", "--addr", srv.Addr, "--json", "--size", "64", "--pipeline", "2"}, short...)...)
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var res struct {
		Mode     string  `json:"mode"`
		Size     int     `json:"size"`
		Pipeline int     `json:"pipeline"`
		Messages int64   `json:"messages"`
		Rate     float64 `json:"messages_per_s"`
		Latency  struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"latency_us"`
		Errors map[string]int64 `json:"errors"`
	}
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Errorf("more than one JSON value on stdout:\n%s", stdout)
	}
	if res.Mode != "pingpong" || res.Size != 64 || res.Pipeline != 2 || res.Messages == 0 || res.Rate <= 0 || res.Latency.P50 <= 0 {
		t.Errorf("result: %+v", res)
	}
	for _, kind := range []string{"mismatch", "timeout", "reset", "refused", "other"} {
		if n, ok := res.Errors[kind]; !ok || n != 0 {
			t.Errorf("errors[%q] = %d, %v", kind, n, ok)
		}
	}
}

func TestBenchAddrFromEnvironment(t *testing.T) {
	benchIsolate(t)
	srv := echotest.NewServer(t, nil)
	t.Setenv("ECHOCTL_ADDR", srv.Addr)
	code, stdout, stderr := benchRun(t, append([]string{"bench"}, short...)...)
	if code != ExitOK || !strings.Contains(stdout, srv.Addr) {
		t.Errorf("exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// flipServer echoes every byte but the one at offset 200 of each
// connection, which it changes from 'x' to 'y' or the like.
func flipServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 1024)
				var off int
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if 200 >= off && 200 < off+n {
							buf[200-off]++
						}
						off += n
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestBenchMismatchExits3(t *testing.T) {
	benchIsolate(t)
	addr := flipServer(t)
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			args := append([]string{"bench", "--addr", addr}, short...)
			if format == "json" {
				args = append(args, "--json")
			}
			code, stdout, stderr := benchRun(t, args...)
			if code != ExitMismatch {
				t.Errorf("exit code %d, want %d", code, ExitMismatch)
			}
			// Connection 0 sends the bytes 0, 1, 2, ... 250, 0, 1, ...
			want := `echo differs from what was sent at byte 200: sent b'\xc8', received b'\xc9'`
			if !strings.HasPrefix(stderr, "echoctl: ") || !strings.Contains(stderr, want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one line with %q", stderr, want)
			}
			switch format {
			case "json":
				var res struct {
					First struct {
						Offset   int64  `json:"offset"`
						Expected string `json:"expected"`
						Got      string `json:"got"`
					} `json:"first_mismatch"`
				}
				if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.First.Offset != 200 || res.First.Expected != `b'\xc8'` || res.First.Got != `b'\xc9'` {
					t.Errorf("JSON first_mismatch = %+v (%v)\n%s", res.First, err, stdout)
				}
			default:
				if !strings.Contains(stdout, "mismatch") || !strings.Contains(stdout, want) {
					t.Errorf("table lacks the mismatch:\n%s", stdout)
				}
			}
		})
	}
}

// closingServer accepts connections and closes each one at once, without
// echoing anything.
func closingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestBenchRunErrorsExit1(t *testing.T) {
	benchIsolate(t)
	addr := closingServer(t)
	code, stdout, stderr := benchRun(t, append([]string{"bench", "--addr", addr, "--conns", "2"}, short...)...)
	if code != ExitNetwork {
		t.Errorf("exit code %d, want %d", code, ExitNetwork)
	}
	// The server's close reads as a reset or as an echo cut short,
	// depending on when it comes.
	if !strings.HasPrefix(stderr, "echoctl: bench: the run failed: ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q", stderr)
	}
	if !strings.Contains(stdout, "first error") || strings.Contains(stdout, "none") {
		t.Errorf("the table does not count the connections closed early:\n%s", stdout)
	}
}

// TestBenchNoServerExits1 checks that bench against a port nothing listens
// on fails within about a second with one clear line, not after the whole
// run of refused connects.
func TestBenchNoServerExits1(t *testing.T) {
	benchIsolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every connect is refused
	start := time.Now()
	code, stdout, stderr := benchRun(t, "bench", "--addr", addr, "--conns", "2", "--duration", "30s")
	// Generous: the old behaviour took the whole 31s.
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("bench took %v against a closed port", took)
	}
	if code != ExitNetwork {
		t.Errorf("exit code %d, want %d", code, ExitNetwork)
	}
	want := "echoctl: bench: no connection could be opened to " + addr + " in "
	if !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "connection refused") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want one line starting %q, saying connection refused", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing: there is no result", stdout)
	}
}

// TestBenchInterruptedExits1 checks that a run cut short (SIGINT cancels
// the context) exits 1 and says so, in the table or the JSON and in the
// error line.
func TestBenchInterruptedExits1(t *testing.T) {
	benchIsolate(t)
	srv := echotest.NewServer(t, nil)
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			args := []string{"bench", "--addr", srv.Addr, "--warmup", "0s", "--duration", "30s"}
			want := "INTERRUPTED"
			if format == "json" {
				args, want = append(args, "--json"), `"interrupted": true`
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(300*time.Millisecond, cancel) // as SIGINT does
			var out, errOut bytes.Buffer
			code := Run(ctx, args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
			if code != ExitNetwork {
				t.Errorf("exit code %d, want %d", code, ExitNetwork)
			}
			stderr := errOut.String()
			if !strings.HasPrefix(stderr, "echoctl: bench: run interrupted after ") || !strings.Contains(stderr, "of the 30.00s to measure") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one line saying the run was interrupted", stderr)
			}
			if !strings.Contains(out.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, out.String())
			}
		})
	}
}

func TestBenchHelp(t *testing.T) {
	benchIsolate(t)
	code, stdout, _ := benchRun(t, "bench", "--help")
	if code != ExitOK {
		t.Fatalf("exit code %d", code)
	}
	for _, want := range []string{"--mode", "--conns", "--size", "--pipeline", "--rate", "--chunk", "--duration", "--warmup", "--op-timeout", "--server-pid", "--json", "--busy-poll", "Exit codes:", "3  an echo differed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestBenchProgressLine(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	var buf bytes.Buffer
	cfg := bench.Config{Addr: srv.Addr, Warmup: 100 * time.Millisecond, Duration: time.Second}
	if err := runBench(context.Background(), cfg, benchOutputs{}, io.Discard, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "\r\x1b[Kbench ") || strings.Contains(out, "\n") || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("progress output %q: want lines rewritten in place, then cleared", out)
	}
}

package bench_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/echoctl/echoctl/internal/testtool"
	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
)

// serveBound binds addrs on srv (echoctl's server, in this process) and
// serves them until the test ends; it returns the bound addresses in the
// form --addr takes.
func serveBound(t *testing.T, srv *echo.Server, addrs ...string) []string {
	t.Helper()
	b, err := srv.Bind(t.Context(), addrs...)
	if err != nil {
		t.Fatalf("Bind %q: %v", addrs, err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeBound(b) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("ServeBound did not return after Close")
		}
	})
	return b.Addrs()
}

// udpEchoctl serves UDP with echoctl's server, without its per-source
// rate limit (which would drop a benchmark's datagrams on purpose).
func udpEchoctl(t *testing.T) string {
	return serveBound(t, &echo.Server{UDPRatePerSource: &echo.PacketRate{}}, "udp://127.0.0.1:0")[0]
}

func TestUDPAgainstEchoctl(t *testing.T) {
	addr := udpEchoctl(t)
	for _, tt := range []struct {
		name  string
		conns int
		size  int
		// mayLose: 64 KiB datagrams overflow loopback's socket buffers
		// (a few datagrams' worth) whenever a reader is late, as on a
		// loaded 2-core CI machine: the kernel drops them, which the run
		// must count as lost, not fail on.
		mayLose bool
	}{
		{"one socket", 1, bench.UDPHeaderSize, false},
		{"four sockets", 4, 1200, false},
		{"IPv4 limit", 1, echo.MaxDatagramSize, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bench.Config{Addr: addr, Conns: tt.conns, Size: tt.size, Rate: 400,
				Warmup: 200 * time.Millisecond, Duration: 500 * time.Millisecond, OpTimeout: time.Second,
				ServerPID: os.Getpid()} // the server runs in this process
			start := time.Now()
			res, err := bench.Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			// Every datagram is back before the drain's end: the run
			// ends without waiting it out.
			if took := time.Since(start); !tt.mayLose && took >= cfg.Warmup+cfg.Duration+cfg.OpTimeout {
				t.Errorf("Run took %v: the drain was waited out with every datagram back", took)
			}
			u := res.UDP
			if u == nil {
				t.Fatalf("no UDP stats: %+v", res)
			}
			// The CPU times, as in every mode (they were left out).
			if res.Server == nil || res.Server.CPU <= 0 || res.LoadCPU <= 0 {
				t.Errorf("server %+v, load CPU %v: want both measured", res.Server, res.LoadCPU)
			}
			// 400/s for 0.5s: about 200, less the few the schedule's
			// phase leaves out.
			if u.Sent < 150 || u.Sent > 230 {
				t.Errorf("Sent = %d, want about 200", u.Sent)
			}
			if tt.mayLose {
				if u.Received == 0 || u.Received+u.Lost != u.Sent || u.Duplicates != 0 || u.Stray != 0 || res.Errors.Mismatch != 0 {
					t.Errorf("UDP = %+v, errors %+v: want what came back verified, and the rest counted as lost", u, res.Errors)
				}
				return
			}
			// Loopback at a modest rate loses nothing. echoctl's server
			// reads a socket with one reader per CPU, which may answer two
			// datagrams in either order: reordering is possible, though
			// rare (the Python server's test checks its count).
			if u.Received != u.Sent || u.Lost != 0 || u.Duplicates != 0 || u.Stray != 0 || u.Reordered > u.Received/4 {
				t.Errorf("UDP = %+v, want every datagram back once", u)
			}
			if res.Messages != u.Received || res.Latency.Count != res.Messages || res.Bytes != res.Messages*int64(tt.size) {
				t.Errorf("Messages %d, Latency.Count %d, Bytes %d; want %d, %d, %d", res.Messages, res.Latency.Count, res.Bytes, u.Received, u.Received, u.Received*int64(tt.size))
			}
			if res.Latency.P50 <= 0 || u.Jitter < 0 || res.Errors.Total() != 0 {
				t.Errorf("latency %+v, jitter %v, errors %+v", res.Latency, u.Jitter, res.Errors)
			}
			var table strings.Builder
			if err := res.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"datagrams/s", "0 lost (0.00%), ", " reordered, 0 duplicates", "RFC 3550"} {
				if !strings.Contains(table.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, table.String())
				}
			}
		})
	}
}

// TestUDPKnownLossReorderDuplicates runs against a Python server that
// drops, reorders and duplicates by rule (testdata/udp_lossy_echo.py),
// and checks the counts against what the rules make of the datagrams
// sent. Over loopback at 300 datagrams per second the kernel loses and
// reorders none of its own, so the counts are exact.
func TestUDPKnownLossReorderDuplicates(t *testing.T) {
	python := testtool.Need(t, "python3", "runs the lossy UDP echo server")
	addr := startServerProc(t, python, filepath.Join("..", "..", "testdata", "udp_lossy_echo.py"))
	cfg := bench.Config{Addr: "udp://" + addr, Size: 100, Rate: 300,
		Duration: 800 * time.Millisecond, OpTimeout: 1500 * time.Millisecond}
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	u := res.UDP
	n := u.Sent // without a warmup, sequence numbers 0 to n-1 are measured
	if n < 150 {
		t.Fatalf("Sent = %d, want about 240", n)
	}
	var lost, dups, reordered int64
	for s := range n {
		if s%10 == 5 {
			lost++
			continue
		}
		if s%13 == 0 {
			dups++
		}
		// Held, it comes back after the next one not dropped, if any.
		if s%7 == 3 && (s+1 < n && (s+1)%10 != 5 || s+2 < n) {
			reordered++
		}
	}
	if u.Lost != lost || u.Duplicates != dups || u.Reordered != reordered || u.Received != n-lost {
		t.Errorf("of %d sent: UDP = %+v; want %d lost, %d reordered, %d duplicates, %d received", n, u, lost, reordered, dups, n-lost)
	}
	if res.Errors.Total() != 0 || u.Jitter <= 0 {
		t.Errorf("errors %+v, jitter %v", res.Errors, u.Jitter)
	}
}

// startServerProc runs an echo server process that prints "listening on
// HOST:PORT" on its standard output when ready, and returns HOST:PORT; it
// is killed when the test ends.
func startServerProc(t *testing.T, name string, args ...string) string {
	t.Helper()
	line := startProc(t, false, regexp.MustCompile(`^listening on (.+)$`), name, args...)
	return line[1]
}

// startProc runs name with args until the test ends, and waits for a line
// of its standard output (stderr: of its standard error) that matches re,
// whose submatches it returns.
func startProc(t *testing.T, stderr bool, re *regexp.Regexp, name string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out io.ReadCloser
	var err error
	if stderr {
		out, err = cmd.StderrPipe()
	} else {
		out, err = cmd.StdoutPipe()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				lines <- m
			}
		}
		close(lines)
	}()
	select {
	case m, ok := <-lines:
		if !ok {
			t.Fatalf("%s exited before saying it listens", name)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not say it listens within 10s", name)
	}
	return nil
}

// TestUDPCorruptAndStray runs against a server that changes one byte of
// datagram 5 and sends, after datagram 7, a copy that does not start with
// the run's identifier: the first is a mismatch, and lost; the second is
// ignored.
func TestUDPCorruptAndStray(t *testing.T) {
	addr := udpServer(t, func(d []byte) [][]byte {
		switch binary.BigEndian.Uint64(d[8:16]) {
		case 5:
			d[len(d)-1] ^= 0x20
		case 7:
			// Another run's: its identifier, with a CRC-32 to match.
			stray := append([]byte(nil), d...)
			stray[0] ^= 0xff
			binary.BigEndian.PutUint32(stray[28:32], crc32.ChecksumIEEE(stray[0:28]))
			return [][]byte{d, stray}
		}
		return [][]byte{d}
	})
	cfg := bench.Config{Addr: "udp://" + addr, Size: 64, Rate: 200,
		Duration: 300 * time.Millisecond, OpTimeout: 300 * time.Millisecond}
	res, err := bench.Run(context.Background(), cfg)
	var mm *bench.MismatchError
	var em *echo.MismatchError
	if !errors.As(err, &mm) || !errors.As(err, &em) || em.Datagram != 6 || em.Offset != 63 {
		t.Fatalf("Run: %v; want a mismatch at byte 63 of datagram 6", err)
	}
	u := res.UDP
	if res.Errors.Mismatch != 1 || u.Stray != 1 || u.Lost != 1 || u.Received != u.Sent-1 || u.Duplicates != 0 {
		t.Errorf("errors %+v, UDP %+v; want one mismatch, one stray, one lost", res.Errors, u)
	}
	if res.FirstMismatch == nil || !strings.Contains(res.FirstMismatch.Message, "datagram 6") {
		t.Errorf("FirstMismatch = %+v", res.FirstMismatch)
	}
}

// TestUDPDamagedWhereTheIdentifierIs: an echo changed in the run's
// identifier (and no more), or cut short within it, is a mismatch (exit
// 3), not a datagram of another run, ignored as stray.
func TestUDPDamagedWhereTheIdentifierIs(t *testing.T) {
	tests := []struct {
		name   string
		damage func(d []byte) []byte
		want   string
	}{
		{"identifier changed", func(d []byte) []byte { d[2] ^= 0x01; return d }, `^echo of datagram \d+ differs from what was sent at byte 2: `},
		{"cut within the identifier", func(d []byte) []byte { return d[:4] }, "^an echo differs from the datagrams sent: it is 4 bytes long, too short to say of which$"},
		{"empty", func(d []byte) []byte { return d[:0] }, "^an echo differs from the datagrams sent: it is 0 bytes long, too short to say of which$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := udpServer(t, func(d []byte) [][]byte { return [][]byte{tt.damage(d)} })
			cfg := bench.Config{Addr: "udp://" + addr, Size: 64, Rate: 100,
				Duration: 200 * time.Millisecond, OpTimeout: 200 * time.Millisecond}
			res, err := bench.Run(context.Background(), cfg)
			var em *echo.MismatchError
			if !errors.As(err, &em) || !regexp.MustCompile(tt.want).MatchString(em.Error()) {
				t.Fatalf("Run: %v; want a mismatch matching %q", err, tt.want)
			}
			if res.UDP.Stray != 0 || res.Errors.Mismatch == 0 {
				t.Errorf("errors %+v, UDP %+v; want mismatches and no stray", res.Errors, res.UDP)
			}
		})
	}
}

// TestUDPNoServer: every datagram refused (ICMP port unreachable) and none
// answered ends the run within about a second, as a stream's that no
// connect reaches, not after its warmup, window and drain.
func TestUDPNoServer(t *testing.T) {
	addr := closedUDPPort(t)
	cfg := bench.Config{Addr: "udp://" + addr, Size: 64, Rate: 200, Warmup: 5 * time.Second,
		Duration: 5 * time.Second, OpTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, cfg)
	if !errors.Is(err, bench.ErrNoServer) || res != nil || ctx.Err() != nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Run: %v, %+v (context %v); want ErrNoServer, refused, before the warmup ends", err, res, ctx.Err())
	}
}

// TestUDPServerStartsInWarmup: datagrams refused in the warmup, before
// the server is up, are not errors (as a stream's refused connects are
// retried): a run that then measures every echo passes.
func TestUDPServerStartsInWarmup(t *testing.T) {
	addr := closedUDPPort(t)
	// The server's late start is the scenario, not a wait for an event.
	late := time.AfterFunc(300*time.Millisecond, func() {
		srv := &echo.Server{UDPRatePerSource: &echo.PacketRate{}}
		b, err := srv.Bind(context.Background(), "udp://"+addr)
		if err != nil {
			t.Errorf("bind the late server: %v", err)
			return
		}
		go srv.ServeBound(b)
		t.Cleanup(func() { srv.Close() })
	})
	t.Cleanup(func() { late.Stop() })
	cfg := bench.Config{Addr: "udp://" + addr, Size: 64, Rate: 200, Warmup: time.Second, Duration: 500 * time.Millisecond, OpTimeout: 500 * time.Millisecond}
	res, err := runTimed(t, context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v (errors %+v)", err, res.Errors)
	}
	if res.UDP.Lost != 0 || res.Errors.Total() != 0 {
		t.Errorf("lost %d, errors %+v; want none in the window", res.UDP.Lost, res.Errors)
	}
	t.Logf("%d datagrams refused in the warmup", res.ConnectRetries)
}

// closedUDPPort returns a loopback UDP address on which nothing listens
// (a datagram sent there is refused), for now.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// udpServer answers each datagram with what answer returns.
func udpServer(t *testing.T, answer func([]byte) [][]byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, peer, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, d := range answer(buf[:n]) {
				pc.WriteTo(d, peer)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestUDPConfig(t *testing.T) {
	ok := bench.Config{Mode: bench.ModePingPong, Conns: 1, Size: 64, Pipeline: 1, Chunk: 1, Duration: time.Second, OpTimeout: time.Second, Rate: 100}
	tests := []struct {
		name  string
		edit  func(c *bench.Config)
		field string // of the *ConfigError; "" for valid
	}{
		{"valid", func(c *bench.Config) {}, ""},
		{"no rate", func(c *bench.Config) { c.Rate = 0 }, "rate"},
		{"stream", func(c *bench.Config) { c.Mode = bench.ModeStream; c.Rate = 0 }, "mode"},
		{"smaller than the header", func(c *bench.Config) { c.Size = bench.UDPHeaderSize - 1 }, "size"},
		{"IPv4 limit", func(c *bench.Config) { c.Size = echo.MaxDatagramSize }, ""},
		{"past the IPv4 limit", func(c *bench.Config) { c.Size = echo.MaxDatagramSize + 1 }, "size"},
		{"IPv6 limit", func(c *bench.Config) { c.Addr = "udp://[::1]:7"; c.Size = echo.MaxDatagramSizeIPv6 }, ""},
		{"past the IPv6 limit", func(c *bench.Config) { c.Addr = "udp://[::1]:7"; c.Size = echo.MaxDatagramSizeIPv6 + 1 }, "size"},
		{"host name: IPv4's limit", func(c *bench.Config) { c.Addr = "udp://localhost:7"; c.Size = echo.MaxDatagramSize + 1 }, "size"},
		{"pipeline", func(c *bench.Config) { c.Pipeline = 2 }, "pipeline"},
		{"greeting", func(c *bench.Config) { c.Greeting = true }, "greeting"},
		{"proxy", func(c *bench.Config) { c.Proxy = &echo.SendProxy{Version: 2} }, "proxy-protocol"},
		{"tls-resume", func(c *bench.Config) { c.TLSResume = true }, "tls-resume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Addr = "udp://127.0.0.1:7"
			tt.edit(&c)
			err := c.Validate()
			var ce *bench.ConfigError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.field != "" && (!errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, bench.ErrInvalidConfig)):
				t.Fatalf("Validate: %v; want a *ConfigError about %s", err, tt.field)
			}
		})
	}
}

// TestUDPInterrupted cuts a ten-second run short: it returns at once,
// without draining, and says how much it measured.
func TestUDPInterrupted(t *testing.T) {
	addr := udpEchoctl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := bench.Run(ctx, bench.Config{Addr: addr, Rate: 200, Duration: 10 * time.Second, OpTimeout: 5 * time.Second})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %v after an interruption at 500ms", took)
	}
	if !errors.Is(err, bench.ErrInterrupted) || !res.Interrupted || res.Elapsed <= 0 || res.Elapsed >= 10 || res.UDP.Sent == 0 {
		t.Fatalf("Run: %v, %+v, UDP %+v", err, res, res.UDP)
	}
}

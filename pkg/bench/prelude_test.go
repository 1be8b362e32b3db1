package bench_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/echoctl/echoctl/internal/proxytest"
	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
)

// TestRunSendsProxyHeaders: each connection of a run writes one PROXY
// header first, the one asked for, and the load after it is echoed, also
// when its reads busy-poll (which take the raw connection).
func TestRunSendsProxyHeaders(t *testing.T) {
	for _, tt := range []struct {
		name  string
		mode  bench.Mode
		conns int
		busy  time.Duration
	}{
		{"pingpong", bench.ModePingPong, 3, 0},
		{"connrate", bench.ModeConnRate, 3, 0},
		{"connrate busy-polling", bench.ModeConnRate, 1, time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := proxytest.NewServer(t, proxytest.Options{Proxy: true})
			p, err := echo.ParseSendProxy("v2", "203.0.113.7:41000", "", []string{"authority=backend.example", "0xEA=0x01767063652d31"})
			if err != nil {
				t.Fatal(err)
			}
			// No warmup: its check that every connection is open when
			// measuring begins is not what this tests, and the test
			// server, which parses each header, can miss it under load.
			cfg := bench.Config{Addr: srv.Addr, Mode: tt.mode, Conns: tt.conns, BusyPoll: tt.busy, Duration: testDuration, Proxy: p}
			res, err := runTimed(t, context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v (errors %v)", err, srv.Errors())
			}
			if res.Proxy != "v2" || res.Messages == 0 {
				t.Errorf("Result.Proxy %q, Messages %d: want v2 and echoes", res.Proxy, res.Messages)
			}
			h := srv.Header(t)
			if h.Version != 2 || h.Command != proxyproto.PROXY || h.SourceAddr.String() != "203.0.113.7:41000" ||
				h.DestinationAddr.String() != srv.Listener.Addr().String() {
				t.Errorf("header v%d %#x %s -> %s, want v2 PROXY 203.0.113.7:41000 -> %s", h.Version, h.Command, h.SourceAddr, h.DestinationAddr, srv.Listener.Addr())
			}
			tlvs, _ := h.TLVs()
			if len(tlvs) != 2 || string(tlvs[0].Value) != "backend.example" || !bytes.Equal(tlvs[1].Value, []byte("\x01vpce-1")) {
				t.Errorf("TLVs %q, want the authority and the AWS VPC endpoint", tlvs)
			}
			// Every connection sent its header, but those the run's end cut
			// (at most one a worker) may have had no time to; and one the
			// end cut after its header (written as it connects) may not be
			// counted as a connect.
			accepted, headers := srv.Conns()
			if d := int64(headers) - res.Connects; d > int64(cfg.Conns) || -d > int64(cfg.Conns) || accepted-headers > cfg.Conns || len(srv.Errors()) > 0 {
				t.Errorf("%d connections accepted, %d headers, %d connects, errors %v: want one header a connection", accepted, headers, res.Connects, srv.Errors())
			}
		})
	}
}

// TestRunCountsGreetings: with Greeting, a run counts its connections by
// the greeting each read, here from a server that answers as three
// backends in turn, as a round-robin balancer does.
func TestRunCountsGreetings(t *testing.T) {
	srv := proxytest.NewServer(t, proxytest.Options{Greeting: func(i int) string { return fmt.Sprintf("backend-%d\n", i%3) }})
	cfg := bench.Config{Addr: srv.Addr, Mode: bench.ModeConnRate, Conns: 2, Warmup: testWarmup, Duration: testDuration, Greeting: true}
	res, err := runTimed(t, context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var sum int64
	var counts []int64
	for _, c := range res.Greetings.Sorted() {
		if !strings.HasPrefix(c.Greeting, "backend-") {
			t.Errorf("greeting %q counted", c.Greeting)
		}
		sum += c.Conns
		counts = append(counts, c.Conns)
	}
	// The run's end may cut a connection (one a worker) before its greeting.
	if len(counts) != 3 || sum > res.Connects || res.Connects-sum > int64(cfg.Conns) || slices.Max(counts)-slices.Min(counts) > int64(cfg.Conns) {
		t.Errorf("greetings %v over %d connects: want the three backends, evenly", res.Greetings, res.Connects)
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil || !strings.Contains(table.String(), `greetings   "backend-`) {
		t.Errorf("table has no greetings row:\n%s", table.String())
	}
}

// TestRunGreetingErrors: a server without a greeting fails each
// connection (timeout); one that writes past it is a mismatch.
func TestRunGreetingErrors(t *testing.T) {
	extra := proxytest.NewServer(t, proxytest.Options{Greeting: func(int) string { return "backend\nX" }})
	cfg := bench.Config{Addr: extra.Addr, Conns: 1, Warmup: 0, Duration: testDuration, Greeting: true}
	res, err := runTimed(t, context.Background(), cfg)
	var mm *bench.MismatchError
	if !errors.As(err, &mm) || res.Errors.Mismatch == 0 {
		t.Fatalf("Run against a server that writes past its greeting: %v, want a mismatch", err)
	}

	silent := proxytest.NewServer(t, proxytest.Options{})
	cfg = bench.Config{Addr: silent.Addr, Mode: bench.ModeConnRate, Conns: 1, Duration: testDuration, OpTimeout: 50 * time.Millisecond, Greeting: true}
	res, err = runTimed(t, context.Background(), cfg)
	if !errors.Is(err, bench.ErrRunFailed) || res.Errors.Timeout == 0 || !strings.Contains(res.FirstError, "greeting") {
		t.Fatalf("Run against a server without a greeting: %v, first error %q; want timeouts", err, res.FirstError)
	}
}

func TestConfigValidateProxy(t *testing.T) {
	cfg := bench.Config{Addr: "127.0.0.1:7", Mode: bench.ModePingPong, Conns: 1, Size: 1, Pipeline: 1, Chunk: 1,
		Duration: time.Second, OpTimeout: time.Second, Proxy: &echo.SendProxy{Version: 1, TLVs: []proxyproto.TLV{{Type: 1, Value: []byte("h2")}}}}
	err := cfg.Validate()
	var ce *bench.ConfigError
	if !errors.As(err, &ce) || ce.Field != "proxy-tlv" || !strings.Contains(ce.Reason, "v1 has no TLVs") {
		t.Fatalf("Validate = %v, want a *ConfigError about proxy-tlv", err)
	}
}

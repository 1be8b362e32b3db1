package bench_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

// TestEachSecond runs 2.5 seconds and checks the seconds: three of them
// (the last half a second long), each handed to EachSecond as it ended,
// their messages adding up to the Result's and their latencies counted
// apart.
func TestEachSecond(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	for _, tt := range []struct {
		name string
		cfg  bench.Config
	}{
		{"pingpong", bench.Config{Mode: bench.ModePingPong, Conns: 3}},
		{"connrate", bench.Config{Mode: bench.ModeConnRate, Conns: 2}},
		{"stream", bench.Config{Mode: bench.ModeStream, Conns: 2}},
		{"idle", bench.Config{Mode: bench.ModeIdle, Conns: 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Addr = srv.Addr
			cfg.Warmup, cfg.Duration = testWarmup, 2500*time.Millisecond
			start := time.Now()
			var mu sync.Mutex
			var got []bench.Second
			var when []time.Duration
			cfg.EachSecond = func(s bench.Second) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, s)
				when = append(when, time.Since(start))
			}
			res, err := runTimed(t, context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(res.Seconds) != 3 || len(got) != 3 {
				t.Fatalf("%d seconds in the result, %d handed over, want 3: %+v", len(res.Seconds), len(got), res.Seconds)
			}
			var sum, bytes, connects int64
			for i, s := range res.Seconds {
				// A second's bytes are its echoes': they were read from a
				// whole-run counter whenever the sampler woke.
				if cfg.Mode != bench.ModeStream && res.Messages > 0 && s.Bytes != s.Messages*(res.Bytes/res.Messages) {
					t.Errorf("second %d: %d bytes for %d echoes of %d bytes", i+1, s.Bytes, s.Messages, res.Bytes/res.Messages)
				}
				bytes += s.Bytes
				if s != got[i] {
					t.Errorf("second %d: result has %+v, EachSecond had %+v", i+1, s, got[i])
				}
				if s.Second != i+1 {
					t.Errorf("second %d numbered %d", i+1, s.Second)
				}
				// Idle opens its connections in the first second and only
				// holds them after.
				busy := cfg.Mode != bench.ModeIdle || i == 0
				if (busy && (s.Messages == 0 || s.MessagesPerSec <= 0)) || s.Latency.Count != s.Messages || s.Errors.Total() != 0 {
					t.Errorf("second %d: %+v", i+1, s)
				}
				sum += s.Messages
				connects += s.Connects
				// A connrate cycle is one connection opened in the
				// window: it counts in the second it opened in, and its
				// echo in the second it ended in.
				if cfg.Mode == bench.ModeConnRate && (s.Connects < s.Messages-int64(cfg.Conns) || s.Connects > s.Messages+int64(cfg.Conns)) {
					t.Errorf("second %d: %d connections opened for %d cycles of %d workers", i+1, s.Connects, s.Messages, cfg.Conns)
				}
			}
			if connects > res.Connects {
				t.Errorf("the seconds open %d connections, the whole run %d", connects, res.Connects)
			}
			if sum != res.Messages || bytes != res.Bytes {
				t.Errorf("the seconds add up to %d messages and %d bytes, the result has %d and %d", sum, bytes, res.Messages, res.Bytes)
			}
			if e := res.Seconds[0].Elapsed; e < 0.9 || e > 1.1 {
				t.Errorf("the first second lasted %.3fs", e)
			}
			// Idle measures from the start, warmup included.
			last := 0.5
			if cfg.Mode == bench.ModeIdle {
				last += cfg.Warmup.Seconds()
			}
			if e := res.Seconds[2].Elapsed; e < last-0.1 || e > last+0.1 {
				t.Errorf("the last second lasted %.3fs, want about %.2fs", e, last)
			}
			// As it happens: the first second ends a second into the
			// window, not at the end of the run.
			if lead := cfg.Warmup + cfg.Duration - when[0]; cfg.Mode != bench.ModeIdle && lead < time.Second {
				t.Errorf("the first second was handed over %v into the run, only %v before its end", when[0], lead)
			}
			if n := len(res.LatencyCurve); n < 2 || res.LatencyCurve[n-1].Percentile != 100 || res.LatencyCurve[n-1].Count != res.Latency.Count {
				t.Errorf("latency curve: %+v", res.LatencyCurve)
			}
			b, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			var back bench.Result
			if err := json.Unmarshal(b, &back); err != nil || len(back.Seconds) != 3 || len(back.LatencyCurve) != len(res.LatencyCurve) {
				t.Errorf("JSON round trip: %v, %d seconds", err, len(back.Seconds))
			}
		})
	}
}

// TestEachSecondShortLastSecond: a last second of a few milliseconds
// counts the connections opened in it, not those the whole-run counter
// had grown by when the run read it after its workers stopped (which gave
// a negative count, or thousands a second).
func TestEachSecondShortLastSecond(t *testing.T) {
	srv := echotest.NewServer(t, nil)
	cfg := bench.Config{Addr: srv.Addr, Mode: bench.ModeConnRate, Conns: 2, Warmup: testWarmup, Duration: time.Second + 2*time.Millisecond}
	res, err := runTimed(t, context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Seconds) != 2 {
		t.Fatalf("%d seconds, want 2: %+v", len(res.Seconds), res.Seconds)
	}
	for i, s := range res.Seconds {
		if s.Connects < 0 || s.Connects > s.Messages+int64(cfg.Conns) {
			t.Errorf("second %d (%.4fs): %d connections opened for %d cycles of %d workers", i+1, s.Elapsed, s.Connects, s.Messages, cfg.Conns)
		}
	}
}

package bench

import (
	"sync"
	"testing"
)

// TestLatencyRecorderSwapLosesNothing records from one goroutine while
// another swaps as fast as it can: every value comes out of exactly one
// swap, its bytes in the same swap. Run with -race, it also checks that
// the two never touch a buffer at once.
func TestLatencyRecorderSwapLosesNothing(t *testing.T) {
	const n = 200000
	l := newLatencyRecorder()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := int64(1); i <= n; i++ {
			l.record(i, 2*i)
		}
	})
	var count, sum int64
	take := func() {
		got := l.swap()
		ns, bytes := got.ns, got.bytes
		var in int64
		for _, v := range ns {
			count++
			sum += v
			in += v
		}
		if bytes != 2*in {
			t.Fatalf("a swap of latencies summing to %d holds %d bytes, want %d", in, bytes, 2*in)
		}
	}
	for swaps := 0; ; swaps++ {
		select {
		case <-done:
			wg.Wait()
			take()
			take() // the other buffer too
			if count != n || sum != n*(n+1)/2 {
				t.Fatalf("swapped out %d values summing to %d, want %d summing to %d", count, sum, n, n*(n+1)/2)
			}
			return
		default:
			take()
		}
	}
}

//go:build !linux

package bench

import "time"

// startTicker has no precise timer to wait on outside Linux: the pacer
// falls back on the runtime's timers.
func startTicker(_, _ time.Duration, _ func(from, n int64)) (stop func(), ok bool) {
	return nil, false
}

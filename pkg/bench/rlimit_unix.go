//go:build unix

package bench

import (
	"fmt"
	"math"
	"syscall"
)

// fdReserve is how many descriptors, beyond one per connection, a run
// leaves for the runtime, standard streams and /proc reads.
const fdReserve = 32

// checkFileLimit fails early, with a message that says why, when conns
// connections would not fit under the open-file limit. (Go raises the soft
// limit to the hard one at startup.)
func checkFileLimit(conns int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	// Cur is a uint64 on Linux and macOS, an int64 on the BSDs, where
	// RLIM_INFINITY is its largest value.
	limit := uint64(lim.Cur)
	if limit != math.MaxUint64 && limit != math.MaxInt64 && uint64(conns)+fdReserve > limit {
		return fmt.Errorf("conns %d: needs %d open files, but the limit (ulimit -n) is %d", conns, conns+fdReserve, limit)
	}
	return nil
}

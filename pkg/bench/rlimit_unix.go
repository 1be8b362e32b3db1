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
	if lim.Cur != math.MaxUint64 && uint64(conns)+fdReserve > lim.Cur {
		return fmt.Errorf("conns %d: needs %d open files, but the limit (ulimit -n) is %d", conns, conns+fdReserve, lim.Cur)
	}
	return nil
}

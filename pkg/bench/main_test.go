package bench_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if a run leaves a goroutine behind: every
// worker, reader and progress reporter must be gone when Run returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

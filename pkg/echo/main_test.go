package echo

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if any test, in this package or in
// package echo_test, leaves a goroutine behind: every server, connection and
// client exchange a test starts must be finished by the time it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Package testtool finds the programs that echoctl's tests run against
// (haproxy, nginx, socat, python3, openssl, make, chromium), with one rule for all: a test
// whose program is missing skips on a developer's machine and fails under
// CI=true, where `make test` (scripts/test-deps.sh) has installed them.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where a missing
// program is a failure, not a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Need returns the path of the program name, or ends the test: Skip when
// it is missing, Fatal under CI=true. why says what the test uses it for.
func Need(t testing.TB, name, why string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	Missing(t, name+" ("+why+"): "+err.Error())
	return ""
}

// Missing ends the test for a tool that is missing or unusable, as Need
// does: Fatal under CI=true, Skip otherwise. what names it and why.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("missing %s; under CI=true a missing tool is a failure (make test-deps installs it)", what)
	}
	t.Skipf("missing %s (make test-deps installs it)", what)
}

package testtool

import (
	"os/exec"
	"testing"
)

func TestNeedFindsAProgram(t *testing.T) {
	want, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on PATH")
	}
	if got := Need(t, "sh", "a shell"); got != want {
		t.Fatalf("Need(sh) = %q, want %q", got, want)
	}
}

func TestNeedMissingSkipsOutsideCI(t *testing.T) {
	t.Setenv("CI", "")
	var reached bool
	t.Run("missing", func(t *testing.T) {
		Need(t, "echoctl-no-such-program", "nothing")
		reached = true
	})
	if reached {
		t.Fatal("Need returned for a missing program")
	}
	// The subtest skipped (a Fatal would have failed this test too).
}

func TestInCI(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want bool
	}{{"true", true}, {"", false}, {"1", false}} {
		t.Setenv("CI", tt.env)
		if got := InCI(); got != tt.want {
			t.Errorf("CI=%q: InCI() = %v, want %v", tt.env, got, tt.want)
		}
	}
}

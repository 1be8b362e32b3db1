package cmd

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/echoctl/echoctl/pkg/echo"
)

func TestExitCode(t *testing.T) {
	mismatch := &echo.MismatchError{Offset: 3, Sent: 'a', Received: 'b'}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"runtime error", runtimeError{errors.New("connect localhost:10000: connection refused")}, ExitNetwork},
		{"wrapped runtime error", fmt.Errorf("serve: %w", runtimeError{errors.New("boom")}), ExitNetwork},
		{"usage error", usageError{errors.New("invalid addr")}, ExitUsage},
		{"mismatch in runtime error", runtimeError{mismatch}, ExitMismatch},
		{"wrapped mismatch in runtime error", runtimeError{fmt.Errorf("send: %w", mismatch)}, ExitMismatch},
		{"asRuntimeError(mismatch)", asRuntimeError(mismatch), ExitMismatch},
		{"asRuntimeError(network error)", asRuntimeError(&echo.DialError{Addr: "x:1", Err: errors.New("refused")}), ExitNetwork},
		{"asRuntimeError(closed before echo)", asRuntimeError(&echo.ExchangeError{Addr: "x:1", Err: echo.ErrClosedBeforeEcho}), ExitNetwork},
		{"asRuntimeError(short echo)", asRuntimeError(&echo.MismatchError{Offset: 10, Short: true}), ExitMismatch},
		{"asRuntimeError(not TLS)", asRuntimeError(&echo.DialError{Addr: "tls://x:1", Err: echo.ErrNotTLS}), ExitNetwork},
		{"asRuntimeError(output error)", asRuntimeError(outputError(&echo.OutputError{Err: errors.New("disk full")})), ExitNetwork},
		{"asRuntimeError keeps a usage error", asRuntimeError(usageError{errors.New("bad flag")}), ExitUsage},
		{"asRuntimeError(nil)", asRuntimeError(nil), ExitOK},
		{"unmarked error: from cobra's parsing", errors.New(`unknown command "x" for "echoctl"`), ExitUsage},
		{"cobra unknown command", executeErr(t, "bogus"), ExitUsage},
		{"cobra unknown subcommand argument", executeErr(t, "serve", "now"), ExitUsage},
		{"cobra unknown flag", executeErr(t, "send", "--bogus"), ExitUsage},
		{"cobra flag without value", executeErr(t, "send", "--addr"), ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// executeErr runs a fresh command tree with args and returns its error,
// which must not be nil.
func executeErr(t *testing.T, args ...string) error {
	t.Helper()
	root := newRootCmd(Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
	root.SetArgs(args)
	err := root.ExecuteContext(cancelledContext())
	if err == nil {
		t.Fatalf("echoctl %q succeeded, want an error", args)
	}
	return err
}

func TestAsRuntimeError(t *testing.T) {
	if err := asRuntimeError(nil); err != nil {
		t.Errorf("asRuntimeError(nil) = %v", err)
	}
	cause := errors.New("cause")
	err := asRuntimeError(cause)
	if _, ok := err.(runtimeError); !ok || !errors.Is(err, cause) || err.Error() != "cause" {
		t.Errorf("asRuntimeError(cause) = %#v, want a runtimeError wrapping cause with its message", err)
	}
	u := usageError{cause}
	if err := asRuntimeError(u); err != u {
		t.Errorf("asRuntimeError(usage error) = %#v, want it unchanged", err)
	}
}

// TestRunUsageErrors checks errors in the command line itself: exit code 2
// and one line on stderr.
func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "echoctl"`},
		{[]string{"serve", "now"}, `unknown command "now" for "echoctl serve"`},
		{[]string{"version", "now"}, `unknown command "now" for "echoctl version"`},
		{[]string{"--bogus"}, `unknown flag: --bogus`},
		{[]string{"send", "--bogus"}, `unknown flag: --bogus`},
		{[]string{"serve", "--timeout", "1s"}, `unknown flag: --timeout`},
		{[]string{"send", "--shutdown-timeout", "1s"}, `unknown flag: --shutdown-timeout`},
		{[]string{"send", "--addr"}, `flag needs an argument: --addr`},
		{[]string{"send", "--addr", "127.0.0.1:1", "--addr", "127.0.0.1:2"}, `invalid argument "127.0.0.1:2" for "--addr" flag: send connects to one address; --addr is given twice (first "127.0.0.1:1")`},
		{[]string{"serve", "--buffer-size", "abc"}, `invalid argument "abc" for "--buffer-size" flag: "abc" is not a decimal integer`},
		{[]string{"send", "--timeout", "soon"}, `invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"`},
		{[]string{"send", "--stdin", "hello"}, `send: give MESSAGE arguments or --stdin, not both`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			isolate(t)
			checkUsageError(t, run(t, cancelledContext(), tt.args...), tt.want)
		})
	}
}

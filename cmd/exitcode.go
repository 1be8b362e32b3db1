package cmd

import (
	"errors"

	"github.com/echoctl/echoctl/pkg/echo"
)

// Exit codes, documented in the root command's help and docs/exit-codes.md.
const (
	// ExitOK: success; for send, the echo equals what was sent.
	ExitOK = 0
	// ExitNetwork: a network or runtime error (cannot listen, connect
	// refused, reset, timeout).
	ExitNetwork = 1
	// ExitUsage: bad flags, arguments, environment or config file.
	ExitUsage = 2
	// ExitMismatch: send received an echo that differs from what it sent.
	ExitMismatch = 3
)

// exitCodesHelp is appended to the root command's help.
const exitCodesHelp = `Exit codes:
  0  success (send, bench: the echo equals what was sent)
  1  network or runtime error (cannot listen, connection refused, reset, timeout)
  2  usage or configuration error (flags, arguments, environment, config file)
  3  send, bench: the echo differs from what was sent (the message says where)
  1 and 2 apply to every command; 3 only to send and bench.`

// usageError marks an error in flags, arguments or configuration.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// runtimeError marks an error that happened while running a command, after
// its configuration was accepted.
type runtimeError struct{ err error }

func (e runtimeError) Error() string { return e.err.Error() }
func (e runtimeError) Unwrap() error { return e.err }

// asRuntimeError marks err, unless it is nil or already a usage error, as
// having happened at run time.
func asRuntimeError(err error) error {
	var u usageError
	if err == nil || errors.As(err, &u) {
		return err
	}
	return runtimeError{err}
}

// exitCode maps an error returned by the root command to the exit code.
// Errors that are neither runtime errors nor echo mismatches come from
// parsing the command line (cobra's own errors included): usage errors.
func exitCode(err error) int {
	var mismatch *echo.MismatchError
	var rt runtimeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &mismatch):
		return ExitMismatch
	case errors.As(err, &rt):
		return ExitNetwork
	default:
		return ExitUsage
	}
}

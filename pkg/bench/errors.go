package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/echoctl/echoctl/pkg/echo"
)

// ErrInvalidConfig is returned, wrapped with the reason, by Run when the
// Config cannot be run: a field out of range, a bad address, a server pid
// that does not exist.
var ErrInvalidConfig = errors.New("bench: invalid configuration")

// ErrRunFailed is returned, wrapped with what went wrong, by Run when the
// run failed other than by a mismatch: errors (refused or timed-out
// connects, resets, timeouts, counted by kind), or a run that measured
// nothing (no echo completed, connections not open in time). Its Result
// still holds what was measured.
var ErrRunFailed = errors.New("bench: the run failed")

// ErrInterrupted is returned, wrapped with how much of the run was done,
// by Run when its context ended before the run did (SIGINT in echoctl, or
// a deadline sooner than the run's end). Its Result holds what was
// measured until then, with Interrupted set.
var ErrInterrupted = errors.New("bench: run interrupted")

// ErrNoServer is returned, wrapped with the address and the last connect's
// error, by Run when no connection could be opened at all: every connect
// was refused or timed out for about a second from the start (or failed
// at once otherwise, such as a host name that does not resolve); over
// udp://, every datagram was refused (ICMP port unreachable) and none
// answered for about a second. The run then ends at once, with a nil
// Result. Once a connection has opened, the
// server is retried as the warmup allows, and later failures are counted
// in the Result.
var ErrNoServer = errors.New("bench: no connection could be opened")

// ErrUnsupported is returned by ProcessCPU and ProcessRSS where /proc is
// not available.
var ErrUnsupported = errors.New("bench: not supported on this system")

// MismatchError reports the first echoed byte that differed from what was
// sent, on which connection. It unwraps to the *echo.MismatchError, whose
// Offset counts from the first byte that connection sent.
type MismatchError struct {
	// Conn is the index of the connection (or connrate worker), from 0.
	Conn int
	// Err describes the difference.
	Err *echo.MismatchError
}

// Error implements the error interface.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("bench: connection %d: %v", e.Conn, e.Err)
}

// Unwrap returns the *echo.MismatchError.
func (e *MismatchError) Unwrap() error { return e.Err }

// An ErrorKind classifies an error in a run.
type ErrorKind string

// The kinds of error a Result counts.
const (
	// KindMismatch is an echo that differs from what was sent.
	KindMismatch ErrorKind = "mismatch"
	// KindTimeout is an operation that took longer than OpTimeout.
	KindTimeout ErrorKind = "timeout"
	// KindReset is a connection reset or broken by the server.
	KindReset ErrorKind = "reset"
	// KindRefused is a connect the server refused (after the warmup).
	KindRefused ErrorKind = "refused"
	// KindOther is anything else, such as the server closing a connection
	// before it echoed everything, or running out of ports or descriptors.
	KindOther ErrorKind = "other"
)

// classify returns the kind of err.
func classify(err error) ErrorKind {
	var mm *MismatchError
	var ne net.Error
	switch {
	case errors.As(err, &mm):
		return KindMismatch
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return KindReset
	default:
		return KindOther
	}
}

// errServerClosed describes a connection the server closed before it had
// echoed everything sent on it.
func errServerClosed(echoed int64) error {
	return fmt.Errorf("the server closed the connection after echoing %d bytes, before the echo was complete: %w", echoed, io.ErrUnexpectedEOF)
}

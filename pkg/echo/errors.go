package echo

import (
	"errors"
	"fmt"
)

// ErrServerClosed is returned by the Server's Serve and ListenAndServe
// methods after a call to Shutdown or Close.
var ErrServerClosed = errors.New("echo: server closed")

// ErrInvalidBufferSize is returned when a buffer size is outside
// [1, MaxBufferSize].
var ErrInvalidBufferSize = errors.New("echo: invalid buffer size")

// MismatchError reports that the echo a Client received differs from what it
// sent. Offset is the zero-based index of the first byte that differs.
type MismatchError struct {
	// Offset is the index, counted from the first byte sent, of the first
	// byte that differs.
	Offset int64
	// Sent is the byte that was sent at Offset; meaningless when Extra is set.
	Sent byte
	// Received is the byte received at Offset; meaningless when Short is set.
	Received byte
	// Short is set when the server closed the connection after echoing only
	// Offset bytes of those sent.
	Short bool
	// Extra is set when the server echoed more bytes than were sent.
	Extra bool
}

// Error implements the error interface.
func (e *MismatchError) Error() string {
	switch {
	case e.Short:
		return fmt.Sprintf("echo differs from what was sent: the server closed after %d bytes, before the echo was complete", e.Offset)
	case e.Extra:
		return fmt.Sprintf("echo differs from what was sent at byte %d: received %s after the end of what was sent", e.Offset, Quote([]byte{e.Received}))
	default:
		return fmt.Sprintf("echo differs from what was sent at byte %d: sent %s, received %s", e.Offset, Quote([]byte{e.Sent}), Quote([]byte{e.Received}))
	}
}

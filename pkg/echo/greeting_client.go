package echo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// errGreetingTooLong and errNoGreeting are the causes of a GreetingError
// that are not the connection's.
var (
	errGreetingTooLong = fmt.Errorf("no line end in the first %d bytes", MaxGreeting)
	errNoGreeting      = errors.New("the server closed the connection before sending a greeting")
	errGreetingCut     = errors.New("the server closed the connection in the middle of its greeting")
	// errGreetingSilent marks a wait for a greeting that timed out with
	// nothing read, which GreetingError explains; errGreetingUnended, one
	// that timed out after bytes without a line end.
	errGreetingSilent  = errors.New("nothing came before the timeout")
	errGreetingUnended = errors.New("bytes came, but no line end before the timeout")
)

// GreetingError reports that the greeting a Client expected (see
// Client.Greeting) could not be read: the server closed first, sent no
// line end in MaxGreeting bytes or before the timeout, or sent nothing
// before the timeout.
type GreetingError struct {
	Addr string
	Err  error
	// proxied is set when the client sent a PROXY header first: a server
	// waiting for one is then not why it is silent.
	proxied bool
}

// Error returns "greeting from ADDR: CAUSE"; when nothing came before the
// timeout, it says what commonly makes a server silent, and when bytes
// came without a line end, that they did.
func (e *GreetingError) Error() string {
	msg := "greeting from " + e.Addr + ": " + rootCause(e.Err).Error()
	switch {
	case errors.Is(e.Err, errGreetingSilent) && e.proxied:
		msg += ": " + errGreetingSilent.Error() + " (does the server write a greeting?)"
	case errors.Is(e.Err, errGreetingSilent):
		msg += ": " + errGreetingSilent.Error() + " (does the server write a greeting? One that expects a PROXY header waits for it first)"
	case errors.Is(e.Err, errGreetingUnended):
		msg += ": " + errGreetingUnended.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *GreetingError) Unwrap() error { return e.Err }

// ReadGreeting reads the line a server writes when a connection opens
// (echoctl serve --greeting), up to its LF and at most MaxGreeting bytes,
// before anything is sent to it. It returns the line without its line end
// (LF or CRLF), and the bytes read past the LF, which the server sent
// unasked. The caller bounds the wait with r's deadline.
func ReadGreeting(r io.Reader) (line string, rest []byte, err error) {
	buf := make([]byte, MaxGreeting)
	n := 0
	for {
		m, err := r.Read(buf[n:])
		if i := bytes.IndexByte(buf[n:n+m], '\n'); i >= 0 {
			end := n + i
			rest = buf[end+1 : n+m]
			return string(bytes.TrimSuffix(buf[:end], []byte("\r"))), rest, nil
		}
		n += m
		switch {
		case errors.Is(err, io.EOF) && n == 0:
			return "", nil, errNoGreeting
		case errors.Is(err, io.EOF):
			return "", nil, errGreetingCut
		case err != nil && n == 0 && errors.Is(err, os.ErrDeadlineExceeded):
			return "", nil, fmt.Errorf("%w: %w", errGreetingSilent, err)
		case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
			return "", nil, fmt.Errorf("%w: %w", errGreetingUnended, err)
		case err != nil:
			return "", nil, err
		case n == len(buf):
			return "", nil, errGreetingTooLong
		}
	}
}

// prefixConn is a connection whose reads return prefix before what the
// connection holds.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

package echo

import (
	"errors"
	"fmt"
	"strings"
)

// ErrServerClosed is returned by the Server's Serve and ListenAndServe
// methods after a call to Shutdown or Close.
var ErrServerClosed = errors.New("echo: server closed")

// ErrInvalidBufferSize is returned when a buffer size is outside
// [1, MaxBufferSize].
var ErrInvalidBufferSize = errors.New("echo: invalid buffer size")

// ErrInvalidBusyPoll is returned when Server.BusyPoll is outside
// [0, MaxBusyPoll].
var ErrInvalidBusyPoll = errors.New("echo: invalid busy poll")

// ErrInvalidTimeout is returned when Server.IdleTimeout or
// Server.WriteTimeout exceeds MaxTimeout.
var ErrInvalidTimeout = errors.New("echo: invalid timeout")

// ErrInvalidPacketRate is returned (wrapped) by ParsePacketRate for text
// that is not a rate, and by ServePacket when Server.UDPRatePerSource is
// out of bounds.
var ErrInvalidPacketRate = errors.New("echo: invalid UDP rate")

// ErrInvalidFault is returned (wrapped) by Faults.Set for text that is not
// a fault setting, and by Serve when Server.Faults is out of bounds.
var ErrInvalidFault = errors.New("echo: invalid fault")

// ErrInvalidGreeting is returned (wrapped, with what is wrong) by
// ValidateGreeting, Serve and ServePacket for a Server.Greeting that is
// not a valid template.
var ErrInvalidGreeting = errors.New("echo: invalid greeting")

// ErrGreetingEnvironment is wrapped, with ErrInvalidGreeting, by the error
// for a greeting template whose {hostname} or {env:NAME} this machine
// cannot read (the variable is not set): a property of where it runs, not
// of the template, which a program that only passes the template on (a
// shared config file's) may let through.
var ErrGreetingEnvironment = errors.New("echo: greeting field not available here")

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
	// Datagram is set over UDP: the number, from 1, of the datagram whose
	// echo differs, or -1 for an echo too short to say which. Offset then
	// counts from the start of that datagram, Short means its echo is
	// shorter and Extra that it is longer.
	Datagram int
}

// Error implements the error interface.
func (e *MismatchError) Error() string {
	if e.Datagram != 0 {
		return e.datagramError()
	}
	switch {
	case e.Short:
		return fmt.Sprintf("echo differs from what was sent: the server closed after %d bytes, before the echo was complete", e.Offset)
	case e.Extra:
		return fmt.Sprintf("echo differs from what was sent at byte %d: received %s after the end of what was sent", e.Offset, Quote([]byte{e.Received}))
	default:
		return fmt.Sprintf("echo differs from what was sent at byte %d: sent %s, received %s", e.Offset, Quote([]byte{e.Sent}), Quote([]byte{e.Received}))
	}
}

// ErrSocketInUse is returned (wrapped) by Bind for a unix:// address whose
// socket file another server is listening on.
var ErrSocketInUse = errors.New("echo: socket in use")

// ErrNotSocket is returned (wrapped) by Bind for a unix:// address whose
// path holds something other than a socket, which is never removed.
var ErrNotSocket = errors.New("echo: not a socket")

// ErrNoTLSConfig is returned (wrapped) by Bind for a tls:// address when
// Server.TLSConfig is nil or holds no certificate.
var ErrNoTLSConfig = errors.New("echo: a tls:// address needs a TLSConfig with a certificate")

// ErrClosedBeforeEcho is returned (wrapped in an *ExchangeError) by Send and
// SendStream when the server closed or reset the connection before it
// echoed a single byte of what was sent: most often a server that accepts
// and closes at once, as a full one (serve --max-conns) does. It is a
// network failure, not a wrong echo; an echo cut short after some bytes is
// a *MismatchError.
var ErrClosedBeforeEcho = errors.New("echo: server closed the connection before echoing anything")

// ErrNotTLS is returned (wrapped in a *DialError) by a Client dialling a
// tls:// address when the server sent its TLS ClientHello back: a plain
// echo server, which does not speak TLS.
var ErrNotTLS = errors.New("echo: server does not speak TLS (it echoed the ClientHello)")

// OutputError reports that a Client could not write the echo to the
// io.Writer it was given (such as a full disk behind standard output):
// neither a network failure nor a wrong echo.
type OutputError struct{ Err error }

// Error returns "write echo: CAUSE".
func (e *OutputError) Error() string { return "write echo: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OutputError) Unwrap() error { return e.Err }

// bareSentinels are the sentinels that rootCause shows without their
// "echo: " prefix, in messages that already say where they come from.
var bareSentinels = []error{ErrClosedBeforeEcho, ErrNotTLS}

// bareError is a sentinel shown without its package prefix.
type bareError struct{ sentinel error }

func (e bareError) Error() string { return strings.TrimPrefix(e.sentinel.Error(), "echo: ") }
func (e bareError) Unwrap() error { return e.sentinel }

// ErrNoEcho is returned (wrapped in a *DatagramError) by SendPackets when
// a datagram's echo did not come back, retries included.
var ErrNoEcho = errors.New("echo: no echo")

func (e *MismatchError) datagramError() string {
	switch {
	case e.Datagram < 0:
		return fmt.Sprintf("an echo differs from the datagrams sent: it is %d bytes long, too short to say of which", e.Offset)
	case e.Short:
		return fmt.Sprintf("echo of datagram %d differs from what was sent: it is %d bytes long, shorter than the datagram sent", e.Datagram, e.Offset)
	case e.Extra:
		return fmt.Sprintf("echo of datagram %d differs from what was sent at byte %d: received %s after the end of what was sent", e.Datagram, e.Offset, Quote([]byte{e.Received}))
	default:
		return fmt.Sprintf("echo of datagram %d differs from what was sent at byte %d: sent %s, received %s", e.Datagram, e.Offset, Quote([]byte{e.Sent}), Quote([]byte{e.Received}))
	}
}

package echo

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// streamChunkSize is how much SendStream reads from its input for one write.
const streamChunkSize = 32 << 10

// maxChunksInFlight bounds the chunks sent but not yet echoed back that a
// Client keeps for verification; the writer waits when it is reached.
const maxChunksInFlight = 64

// aLongTimeAgo is a deadline in the past, used to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// A Client is the seed's echo client: it connects, sends messages,
// half-closes its side, and reads the echo until the server closes,
// checking that every byte comes back as sent. The zero value is ready to
// use with the seed's defaults.
type Client struct {
	// Addr is the server's address: "host:port" for TCP, or a URL that
	// ParseAddr accepts (tcp://, udp://, tls://host:port, unix:///path).
	// If empty, DefaultAddr is used. A host name's addresses are tried in
	// turn until one connects (over UDP: until one does not refuse).
	Addr string

	// BufferSize is the most read from the connection at once, which is
	// also what one "received" log line shows. If zero, DefaultBufferSize.
	BufferSize int

	// Timeout bounds connecting and the whole exchange. Zero means no limit
	// beyond the context's.
	Timeout time.Duration

	// Logger receives the client's log lines, named "echo_client" as in the
	// seed. The zero value logs nothing.
	Logger zerolog.Logger

	// Resolver resolves the host in Addr. If nil, net.DefaultResolver is used.
	Resolver Resolver

	// Dialer makes each connection attempt; its zero value is fine.
	Dialer net.Dialer

	// TLSConfig configures TLS for a tls:// Addr. If nil, the system's
	// roots verify the server. An empty ServerName is set to the host of
	// Addr (localhost for an empty host); a MinVersion below TLS 1.2 is
	// raised. The caller's config is never changed.
	TLSConfig *tls.Config

	// Retries is how many times SendPackets resends a datagram whose echo
	// has not come back. If zero, DefaultRetries (2) is used; a negative
	// value means no retries.
	Retries int

	// LogMaxBytes is the most bytes of a chunk that a debug log line
	// ("sending b'...'", "received b'...'") shows; the rest is summed up as
	// "... (N more bytes)". If zero, DefaultLogMaxBytes (256) is used; a
	// negative value shows every byte.
	LogMaxBytes int

	// Proxy, if not nil, is the PROXY protocol header written first on
	// each connection: before the TLS handshake on a tls:// address, as
	// HAProxy's send-proxy-v2-ssl does. A udp:// address refuses it. It
	// goes with the first bytes written, in one system call, as HAProxy
	// sends it; a read, CloseWrite or Close before any write sends it
	// alone first (a greeting read first, a connection closed unused).
	Proxy *SendProxy

	// Greeting makes Send and SendStream read one line the server writes
	// when a connection opens (echoctl serve --greeting), before they send
	// anything; the echo is verified after it. A udp:// address refuses it. ClientTrace.Greeted receives the
	// line. See ReadGreeting.
	Greeting bool

	// Trace, if not nil, is called as each exchange of Send and SendStream
	// goes.
	Trace *ClientTrace
}

// Result counts the bytes of one exchange.
type Result struct {
	// Sent is the number of bytes written to the server.
	Sent int64
	// Received is the number of bytes the server echoed back.
	Received int64
}

// ClientTrace holds functions a Client calls as each exchange of Send and
// SendStream goes, as net/http/httptrace's ClientTrace does: to time it,
// and to learn the server's greeting. Any of them may be nil; they run on
// the goroutine that called Send, in the order below, and must return
// quickly.
type ClientTrace struct {
	// Connected is called when the connection is ready: resolving,
	// connecting, the PROXY header and the TLS handshake took d. Over UDP
	// (SendPackets), which connects nothing, it is not called.
	Connected func(d time.Duration)
	// Greeted is called with the line the server wrote first, without its
	// line end, when Client.Greeting is set and it was read, before
	// anything is sent.
	Greeted func(line string)
	// Echoed is called when the exchange succeeded: from its first write
	// to the end of the echo took d (over UDP, from the first datagram to
	// the last one's echo, resends included).
	Echoed func(d time.Duration)
}

func (c *Client) log(level zerolog.Level) *zerolog.Event {
	e := c.Logger.WithLevel(level)
	if e == nil {
		return nil
	}
	return e.Str("logger", "echo_client")
}

func (c *Client) logData(verb string, data []byte) {
	if e := c.log(zerolog.DebugLevel); e != nil {
		limit := c.LogMaxBytes
		if limit == 0 {
			limit = DefaultLogMaxBytes
		}
		shown := len(data)
		if limit >= 0 {
			shown = min(shown, limit)
		}
		msg := AppendQuoteMax(append(make([]byte, 0, len(verb)+shown+32), verb...), data, limit)
		e.Int("bytes", len(data)).Msg(string(msg))
	}
}

// addr returns the address c connects to: Addr, or DefaultAddr.
func (c *Client) addr() string {
	addr := c.Addr
	if addr == "" {
		return DefaultAddr
	}
	// An empty host (":10000") means localhost, and is named so in the
	// log and in errors.
	if a, err := ParseAddr(addr); err == nil && a.Network != NetworkUnix && a.Host == "" {
		hostPort := net.JoinHostPort(serverHost(a), strconv.Itoa(int(a.Port)))
		if scheme, _, ok := strings.Cut(addr, "://"); ok {
			return scheme + "://" + hostPort
		}
		return hostPort
	}
	return addr
}

// DialContext connects to c.Addr, trying each address the host resolves to
// in turn, and returns the first connection made: for a tls:// address a
// *tls.Conn whose handshake is complete, for udp:// a connected UDP socket
// (which reports nothing until a datagram is sent). The error names the
// address and the cause, as in "connect localhost:10000: connection refused";
// a tls:// server that sends the ClientHello back (a plain echo server)
// fails it with a *DialError wrapping ErrNotTLS.
func (c *Client) DialContext(ctx context.Context) (net.Conn, error) {
	addr := c.addr()
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if err := c.checkStreamOptions(a); err != nil {
		return nil, err
	}
	if a.Network == NetworkUnix {
		if e := c.log(zerolog.InfoLevel); e != nil {
			e.Str("addr", addr).Msgf("connecting to %s", a.Path)
		}
		conn, err := c.Dialer.DialContext(ctx, "unix", a.Path)
		if err != nil {
			return nil, &DialError{Addr: addr, Err: notSocket(a.Path, err)}
		}
		pconn, err := c.withProxy(conn)
		if err != nil {
			conn.Close()
			return nil, &DialError{Addr: addr, Err: err}
		}
		return pconn, nil
	}
	ips, err := c.resolveServer(ctx, addr, a)
	if err != nil {
		return nil, err
	}
	network := "tcp"
	if a.Network == NetworkUDP {
		network = "udp"
	}
	var firstErr error
	for _, ip := range ips {
		conn, err := c.Dialer.DialContext(ctx, network, netip.AddrPortFrom(ip, a.Port).String())
		if err == nil {
			pconn, perr := c.withProxy(conn)
			if perr != nil {
				conn.Close()
				return nil, &DialError{Addr: addr, Err: perr}
			}
			conn = pconn
		}
		if err == nil {
			if a.Network == NetworkTLS {
				return c.handshakeTLS(ctx, conn, addr, serverHost(a))
			}
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &DialError{Addr: addr, Err: firstErr}
}

// handshakeTLS runs the TLS handshake on conn and, when it fails because
// the server sent the ClientHello back, says so with ErrNotTLS: Go's own
// message ("unexpected handshake message of type *tls.clientHelloMsg")
// does not tell a user that the server is a plain echo server.
func (c *Client) handshakeTLS(ctx context.Context, conn net.Conn, addr, host string) (net.Conn, error) {
	hc := &helloConn{Conn: conn}
	tc, err := c.handshake(ctx, hc, addr, host)
	if err != nil && hc.echoed() {
		return nil, &DialError{Addr: addr, Err: fmt.Errorf("%w: %w", ErrNotTLS, err)}
	}
	return tc, err
}

// helloPrefix is how many of the first bytes written and read helloConn
// keeps: a TLS record header (type 0x16, version, length) and the
// handshake message type (0x01, ClientHello), which a TLS server never
// sends.
const helloPrefix = 6

// helloConn keeps the first bytes written to and read from a connection,
// to tell a server that echoed the ClientHello from one that speaks TLS.
// Past those bytes it only passes reads and writes through.
type helloConn struct {
	net.Conn
	wrote, read []byte
}

func (h *helloConn) Write(p []byte) (int, error) {
	n, err := h.Conn.Write(p)
	if len(h.wrote) < helloPrefix {
		h.wrote = append(h.wrote, p[:min(n, helloPrefix-len(h.wrote))]...)
	}
	return n, err
}

func (h *helloConn) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	if len(h.read) < helloPrefix {
		h.read = append(h.read, p[:min(n, helloPrefix-len(h.read))]...)
	}
	return n, err
}

// echoed reports whether the first bytes read are the first bytes written:
// the server sent the ClientHello back.
func (h *helloConn) echoed() bool {
	return len(h.read) == helloPrefix && bytes.Equal(h.read, h.wrote)
}

// resolveServer logs the seed's "connecting to HOST port PORT" and returns
// the addresses to try for a; an empty host means this machine, and is
// logged as "localhost".
func (c *Client) resolveServer(ctx context.Context, addr string, a Addr) ([]netip.Addr, error) {
	host := serverHost(a)
	if e := c.log(zerolog.InfoLevel); e != nil {
		e.Str("addr", addr).Msgf("connecting to %s port %d", host, a.Port)
	}
	ips, err := resolve(ctx, c.Resolver, host)
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	return ips, nil
}

// serverHost is the host a client connects to: an empty one means this
// machine, "localhost".
func serverHost(a Addr) string {
	if a.Host == "" {
		return "localhost"
	}
	return a.Host
}

// DialError reports a failure to connect to Addr.
type DialError struct {
	Addr string
	Err  error
}

// Error returns "connect ADDR: CAUSE" with the innermost cause, such as
// "connect localhost:10000: connection refused".
func (e *DialError) Error() string { return "connect " + e.Addr + ": " + rootCause(e.Err).Error() }

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }

// rootCause strips the net.OpError and os.SyscallError layers that repeat
// the operation and addresses, keeping the cause a user needs to read.
func rootCause(err error) error {
	for _, s := range bareSentinels {
		if errors.Is(err, s) {
			return bareError{s}
		}
	}
	if re := (*resetError)(nil); errors.As(err, &re) {
		return re
	}
	if pe := (*pathError)(nil); errors.As(err, &pe) {
		return pe // "/run/e.sock is not a socket (a regular file): ..."
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	var op *net.OpError
	for errors.As(err, &op) && op.Op != "remote error" {
		err = op.Err
	}
	if op != nil && op.Op == "remote error" {
		return op // "remote error: tls: certificate required"
	}
	return err
}

// Send connects, writes each message with its own write, half-closes, and
// copies the echo to echo (which may be nil) as it arrives, until the server
// closes. It returns a *MismatchError if the echo differs from the
// concatenated messages (an echo cut short included, once some of it came
// back), an *OutputError if writing to echo fails, and a network error if
// the exchange fails: an *ExchangeError, which wraps ErrClosedBeforeEcho
// when the server closed or reset the connection before echoing anything.
// For a udp:// Addr, Send is SendPackets: each message is one datagram.
func (c *Client) Send(ctx context.Context, messages [][]byte, echo io.Writer) (Result, error) {
	if a, err := ParseAddr(c.addr()); err == nil && a.Network == NetworkUDP {
		if err := c.checkStreamOptions(a); err != nil {
			return Result{}, err
		}
		return c.SendPackets(ctx, messages, echo)
	}
	// The first message is known before the connection opens: it is
	// compared with what comes back from the start, so that a server that
	// writes first (a greeting) differs from it at byte 0, however soon.
	var first []byte
	for _, m := range messages {
		if len(m) > 0 {
			first = m
			break
		}
	}
	return c.exchange(ctx, echo, func(send func([]byte) error) error {
		for _, m := range messages {
			if err := send(m); err != nil {
				return err
			}
		}
		return nil
	}, nil, first)
}

// SendStream is Send for a stream of any size: it writes what it reads from
// r while it reads and verifies the echo concurrently, keeping only the
// bytes in flight in memory. It half-closes when r reaches EOF. It needs a
// stream address: over UDP, use SendPackets.
//
// When the exchange fails while a read from r is blocked (a pipe or a
// terminal with nothing to give), SendStream returns without waiting for
// it: the read ends on its own, and what it returns is dropped. Close r
// (or let it reach EOF) to end that goroutine.
func (c *Client) SendStream(ctx context.Context, r io.Reader, echo io.Writer) (Result, error) {
	if a, err := ParseAddr(c.addr()); err == nil && a.Network == NetworkUDP {
		return Result{}, fmt.Errorf("echo: %s: SendStream needs a stream address (tcp, tls or unix); over UDP use SendPackets", c.addr())
	}
	free := make(chan []byte, maxChunksInFlight)
	for range maxChunksInFlight {
		free <- make([]byte, streamChunkSize)
	}
	return c.exchange(ctx, echo, func(send func([]byte) error) error {
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			n, err := r.Read(buf)
			if n > 0 {
				if serr := send(buf[:n]); serr != nil {
					return serr
				}
			} else {
				free <- buf
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return &InputError{Err: err}
			}
		}
	}, free, nil)
}

// exchange runs one connection: produce writes the data through send while
// a second goroutine reads the echo and verifies it against the chunks
// sent, returning each verified chunk to recycle when that is not nil.
// first, if not nil, is the first non-empty chunk produce sends, known in
// advance: it is pending (verified against) before the reader starts.
func (c *Client) exchange(ctx context.Context, echo io.Writer, produce func(send func([]byte) error) error, recycle chan<- []byte, first []byte) (Result, error) {
	var res Result
	// sent counts what the writes took; sending, what was handed to
	// them, which a reset's message counts (a reset may come, and be read,
	// before the write that caused it has returned).
	var sent, sending atomic.Int64
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	start := time.Now()
	conn, err := c.DialContext(ctx)
	if err != nil {
		return res, err
	}
	if c.Trace != nil && c.Trace.Connected != nil {
		c.Trace.Connected(time.Since(start))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	echoConn := conn
	if c.Greeting {
		line, rest, err := ReadGreeting(conn)
		if err != nil {
			c.log(zerolog.InfoLevel).Msg("closing")
			if errors.Is(ctx.Err(), context.Canceled) {
				// A cancel cut the read (its deadline is set long ago),
				// not the server's silence; Timeout's end is that.
				return res, &ExchangeError{Addr: c.addr(), Err: ctx.Err()}
			}
			return res, &GreetingError{Addr: c.addr(), Err: err, proxied: c.Proxy != nil}
		}
		c.logData("received greeting ", []byte(line))
		if c.Trace != nil && c.Trace.Greeted != nil {
			c.Trace.Greeted(line)
		}
		if len(rest) > 0 {
			// Sent after the line, before anything was sent to it: the
			// verifier takes it as the echo's start, which differs from
			// what is sent unless it is the same bytes.
			echoConn = &prefixConn{Conn: conn, prefix: rest}
		}
	}
	start = time.Now()

	v := &verifier{pending: make(chan []byte, maxChunksInFlight), recycle: recycle, done: make(chan struct{}), stop: ctx.Done()}
	firstPending := len(first) > 0
	if firstPending {
		v.pending <- first
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(v.done)
		readErr <- c.readEcho(ctx, echoConn, v, echo)
	}()

	// The producer may outlive the exchange (see below): it logs through
	// gate, which the exchange shuts before its last line, "closing", so
	// that no line follows that one or the caller's report of the error.
	var gate logGate
	send := func(b []byte) error {
		if len(b) == 0 {
			// Nothing to echo: an empty chunk must not hold a slot that
			// only echoed bytes free.
			gate.do(func() { c.logData("sending ", b) })
			return nil
		}
		if firstPending {
			firstPending = false // b is first, pending already
		} else {
			select {
			case v.pending <- b:
			case <-v.done:
				return errEchoEnded
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !gate.do(func() { c.logData("sending ", b) }) {
			return errEchoEnded
		}
		sending.Add(int64(len(b)))
		n, err := conn.Write(b)
		sent.Add(int64(n))
		return err
	}
	// The producer runs on its own goroutine: when the echo fails early it
	// may be blocked reading its input, and the exchange must not wait.
	werrc := make(chan error, 1)
	go func() {
		werr := produce(send)
		if werr == nil {
			v.halfClosed.Store(true) // before the FIN, whose end of stream may follow at once
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				werr = cw.CloseWrite()
			}
			gate.do(func() { c.log(zerolog.InfoLevel).Msg("waiting for response") })
		}
		close(v.pending)
		werrc <- werr // before the reader can stop: it is what we report
		if werr != nil && !errors.Is(werr, errEchoEnded) && !peerClosed(werr) {
			// The server will not close while we have not half-closed:
			// stop the reader rather than wait for the timeout. Not
			// after a reset: the reader first takes the echo that came
			// before it, then sees the reset itself, at once.
			conn.SetReadDeadline(aLongTimeAgo)
		}
	}()
	rerr := <-readErr
	var werr error
	if rerr == nil {
		werr = <-werrc
	} else {
		select {
		case werr = <-werrc:
		default: // still blocked reading its input; it ends on the closed connection
		}
	}
	res.Sent, res.Received = sent.Load(), v.offset
	gate.shut()
	c.log(zerolog.InfoLevel).Msg("closing")
	err = c.exchangeError(ctx, rerr, werr, res.Received, sending.Load())
	if err == nil && c.Trace != nil && c.Trace.Echoed != nil {
		c.Trace.Echoed(time.Since(start))
	}
	return res, err
}

// exchangeError makes the error an exchange returns from the reader's error
// rerr, the writer's werr and the numbers of bytes echoed and sent.
func (c *Client) exchangeError(ctx context.Context, rerr, werr error, received, sending int64) error {
	var mismatch *MismatchError
	switch {
	case errors.As(rerr, &mismatch):
		return rerr
	case errors.As(rerr, new(*OutputError)):
		return rerr
	case errors.As(werr, new(*InputError)):
		return werr
	case received == 0 && ctx.Err() == nil && (peerClosed(rerr) || peerClosed(werr)):
		// Closed or reset before any echo (either side may see it first):
		// a network failure, the same however the race between the two
		// turned out.
		cause := rerr
		if !peerClosed(rerr) {
			cause = werr
		}
		if !errors.Is(cause, ErrClosedBeforeEcho) {
			cause = fmt.Errorf("%w: %w", ErrClosedBeforeEcho, cause)
		}
		return &ExchangeError{Addr: c.addr(), Err: cause}
	case received > 0 && ctx.Err() == nil && (resetSeen(rerr) || resetSeen(werr)):
		// Reset partway: not a wrong echo (exit 3), a network failure
		// that says how far the echo got.
		return &ExchangeError{Addr: c.addr(), Err: &resetError{echoed: received, sent: sending}}
	case rerr != nil && errors.Is(werr, net.ErrClosed):
		// The reader closed the connection when the echo writer failed:
		// the sender's error is only the consequence.
		return &ExchangeError{Addr: c.addr(), Err: rerr}
	case werr != nil && !errors.Is(werr, errEchoEnded) && ctx.Err() == nil:
		return &ExchangeError{Addr: c.addr(), Err: werr}
	case ctx.Err() != nil:
		return &ExchangeError{Addr: c.addr(), Err: ctx.Err()}
	case rerr != nil:
		return &ExchangeError{Addr: c.addr(), Err: rerr}
	}
	return nil
}

// resetSeen reports whether err says that the server reset the
// connection: a reset seen by a read or a write, or a half-close of a
// connection already reset (ENOTCONN).
func resetSeen(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ENOTCONN)
}

// peerClosed reports whether err says that the server closed or reset the
// connection: a read's EOF before the echo (ErrClosedBeforeEcho), a reset
// seen by a read or write, a write after the server closed (EPIPE), or a
// half-close of a connection already reset (ENOTCONN).
func peerClosed(err error) bool {
	for _, target := range []error{ErrClosedBeforeEcho, syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED, syscall.ENOTCONN} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// logGate lets a goroutine that may outlive an exchange log only until the
// exchange has ended.
type logGate struct {
	mu     sync.Mutex
	closed bool
}

// do runs log unless the gate is shut, and reports whether it ran it. A
// line being written when shut is called is finished first.
func (g *logGate) do(log func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	log()
	return true
}

// shut stops the lines of later calls to do.
func (g *logGate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// InputError reports a failure to read the input of SendStream.
type InputError struct{ Err error }

// Error returns "read input: CAUSE".
func (e *InputError) Error() string { return "read input: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// resetError is an exchange the server reset after echoing some of what
// was sent; errors.Is finds syscall.ECONNRESET in it.
type resetError struct{ echoed, sent int64 }

func (e *resetError) Error() string {
	return fmt.Sprintf("connection reset by the server after %d of %d bytes echoed", e.echoed, e.sent)
}

func (e *resetError) Unwrap() error { return syscall.ECONNRESET }

// errEchoEnded stops the writer when the reader has already finished.
var errEchoEnded = errors.New("echo: echo ended")

// ExchangeError reports a network failure after the connection was made.
type ExchangeError struct {
	Addr string
	Err  error
}

// Error returns "echo ADDR: CAUSE".
func (e *ExchangeError) Error() string { return "echo " + e.Addr + ": " + rootCause(e.Err).Error() }

// Unwrap returns the underlying error.
func (e *ExchangeError) Unwrap() error { return e.Err }

// readEcho reads the echo in BufferSize chunks until the server closes,
// copying it to echo and verifying it. When Timeout runs out (ctx) while
// a write to echo is under way, echo held the exchange up, not the
// server: that is an *OutputError.
func (c *Client) readEcho(ctx context.Context, conn net.Conn, v *verifier, echo io.Writer) error {
	size := c.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	buf := make([]byte, size)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			c.logData("received ", buf[:n])
			if echo != nil {
				before := ctx.Err()
				if _, werr := echo.Write(buf[:n]); werr != nil {
					conn.Close()
					return &OutputError{Err: werr}
				}
				if before == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
					conn.Close()
					what := "the deadline"
					if c.Timeout > 0 {
						what = "the " + FormatDuration(c.Timeout) + " timeout"
					}
					return &OutputError{Err: fmt.Errorf("%s ran out while the echo was being written out (its reader did not keep up)", what)}
				}
			}
			if verr := v.check(buf[:n]); verr != nil {
				conn.Close()
				return verr
			}
		}
		if errors.Is(err, io.EOF) {
			return v.finish()
		}
		if err != nil {
			return err
		}
	}
}

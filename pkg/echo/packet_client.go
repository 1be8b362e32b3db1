package echo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// DefaultRetries is how many times SendPackets resends a datagram whose
// echo has not come back when Client.Retries is zero.
const DefaultRetries = 2

func (c *Client) retries() int {
	switch {
	case c.Retries < 0:
		return 0
	case c.Retries == 0:
		return DefaultRetries
	}
	return c.Retries
}

// SendPackets sends each message as one UDP datagram to c.Addr, a udp://
// address, and waits for its echo before it sends the next. It waits up
// to c.Timeout for each echo, retries included: with the defaults (10s, 2
// retries) a datagram is resent after 3.3s and 6.7s without an echo and
// given up after 10s. With no Timeout it waits without limit and never
// resends. Each echo is copied to echo (which may be nil) as it arrives.
//
// A datagram that comes back equal to an earlier message is a second echo
// of it (a late echo of a copy resent, or one the network or the server
// duplicated) and is ignored; if nothing else comes back, it was the echo,
// and a wrong one. SendPackets returns a
// *MismatchError, with Datagram set, for an echo that differs; an
// *OutputError when writing to echo fails; a
// *DatagramError wrapping ErrNoEcho for an echo that never came back; and
// a *DialError when every address of the host refuses (ICMP port
// unreachable: no server on that port).
func (c *Client) SendPackets(ctx context.Context, messages [][]byte, echo io.Writer) (Result, error) {
	var res Result
	addr := c.addr()
	a, err := ParseAddr(addr)
	if err != nil {
		return res, err
	}
	if a.Network != NetworkUDP {
		return res, fmt.Errorf("echo: %s: SendPackets needs a udp:// address", addr)
	}
	ips, err := c.resolveServer(ctx, addr, a)
	if err != nil {
		return res, err
	}
	x := datagramExchange{c: c, addr: addr, messages: messages, echo: echo, res: &res}
	var firstErr error
	for _, ip := range ips {
		conn, err := c.Dialer.DialContext(ctx, "udp", netip.AddrPortFrom(ip, a.Port).String())
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		// Over UDP nothing connects, and Connected is not called (an
		// answer, not a socket, says a server is there); Echoed times the
		// datagrams and their echoes, resends included.
		start, sent := x.next, time.Now()
		err = x.run(ctx, conn)
		conn.Close()
		if err == nil {
			if c.Trace != nil && c.Trace.Echoed != nil {
				c.Trace.Echoed(time.Since(sent))
			}
			c.log(zerolog.InfoLevel).Msg("closing")
			return res, nil
		}
		// A refused first datagram means no server on this address: try
		// the next, as DialContext does for TCP.
		if errors.Is(err, syscall.ECONNREFUSED) && x.next == start && ctx.Err() == nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		c.log(zerolog.InfoLevel).Msg("closing")
		return res, err
	}
	c.log(zerolog.InfoLevel).Msg("closing")
	return res, &DialError{Addr: addr, Err: firstErr}
}

// datagramExchange is one SendPackets call.
type datagramExchange struct {
	c        *Client
	addr     string
	messages [][]byte
	echo     io.Writer
	res      *Result
	next     int    // index of the first message whose echo has not come back
	ipv6     bool   // the current address is IPv6: datagrams up to MaxDatagramSizeIPv6
	buf      []byte // receives the echoes
	// ignored is the last datagram taken, while awaiting the current
	// message's echo, for a second echo of an earlier one (isEarlier): if
	// no echo comes, it may have been a wrong one.
	ignored []byte
}

// run sends the messages from x.next on over conn, a connected UDP socket.
// It returns an error wrapping syscall.ECONNREFUSED if the peer's port is
// closed.
func (x *datagramExchange) run(ctx context.Context, conn net.Conn) error {
	x.ipv6 = false
	if ap, ok := addrPort(conn.RemoteAddr()); ok {
		x.ipv6 = !ap.Addr().Unmap().Is4()
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	if x.buf == nil {
		x.buf = make([]byte, packetBufferSize)
	}
	attempts := x.c.retries() + 1
	var wait time.Duration
	if x.c.Timeout > 0 {
		wait = x.c.Timeout / time.Duration(attempts)
	}
	for ; x.next < len(x.messages); x.next++ {
		if err := x.sendOne(ctx, conn, attempts, wait); err != nil {
			return err
		}
	}
	return nil
}

// sendOne sends message x.next and waits for its echo, resending it after
// each wait without one, attempts times in all.
func (x *datagramExchange) sendOne(ctx context.Context, conn net.Conn, attempts int, wait time.Duration) error {
	i, m := x.next, x.messages[x.next]
	x.ignored = nil
	for attempt := 1; ; attempt++ {
		x.c.logData("sending ", m)
		n, err := conn.Write(m)
		x.res.Sent += int64(n)
		if err != nil {
			return x.fail(ctx, err, "")
		}
		var deadline time.Time
		if wait > 0 {
			deadline = time.Now().Add(wait)
		}
		conn.SetReadDeadline(deadline)
		if ctx.Err() != nil { // the AfterFunc deadline may have been overwritten
			return x.fail(ctx, ctx.Err(), "")
		}
		err = x.awaitEcho(conn, i, m)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
			return x.fail(ctx, err, "")
		}
		if attempt == attempts {
			if x.ignored != nil {
				// Only datagrams equal to earlier messages came back: the
				// server answered this one with one of those.
				return x.took(x.ignored, i, m)
			}
			return x.fail(ctx, ErrNoEcho, fmt.Sprintf("no echo after %d %s in %v", attempts, plural(attempts, "attempt"), x.c.Timeout))
		}
		if e := x.c.log(zerolog.WarnLevel); e != nil {
			e.Int("datagram", i+1).Int("retry", attempt).Msgf("no echo for datagram %d within %v; resending (retry %d of %d)",
				i+1, wait.Round(time.Millisecond), attempt, attempts-1)
		}
	}
}

// awaitEcho reads datagrams until the echo of message i (m) arrives,
// skipping late duplicates of earlier ones. It writes the echo to x.echo
// and compares it with m.
func (x *datagramExchange) awaitEcho(conn net.Conn, i int, m []byte) error {
	for {
		n, err := conn.Read(x.buf)
		if err != nil {
			return err
		}
		got := x.buf[:n]
		if !bytes.Equal(got, m) && x.isEarlier(got, i) {
			if e := x.c.log(zerolog.DebugLevel); e != nil {
				e.Int("bytes", n).Msg("ignored a second echo of an earlier datagram")
			}
			x.ignored = append(x.ignored[:0], got...)
			continue
		}
		return x.took(got, i, m)
	}
}

// took takes got for the echo of message i (m): counts it, logs it, copies
// it to x.echo and compares it with m.
func (x *datagramExchange) took(got []byte, i int, m []byte) error {
	x.res.Received += int64(len(got))
	x.c.logData("received ", got)
	if x.echo != nil {
		if _, err := x.echo.Write(got); err != nil {
			return &OutputError{Err: err}
		}
	}
	return datagramMismatch(i+1, m, got)
}

// isEarlier reports whether p equals one of the messages before i: a late
// echo of a copy resent, or a second echo of one (UDP may deliver a
// datagram twice, and a server's fault-duplicate answers twice), whose
// first echo was read already. The echo of message i is the first
// datagram that is not one.
func (x *datagramExchange) isEarlier(p []byte, i int) bool {
	for j := range i {
		if bytes.Equal(p, x.messages[j]) {
			return true
		}
	}
	return false
}

// fail wraps err, which happened for datagram x.next, for the caller.
func (x *datagramExchange) fail(ctx context.Context, err error, detail string) error {
	var mismatch *MismatchError
	switch {
	case errors.As(err, &mismatch), errors.As(err, new(*OutputError)):
		return err
	case ctx.Err() != nil:
		return &ExchangeError{Addr: x.addr, Err: ctx.Err()}
	case errors.Is(err, syscall.EMSGSIZE):
		limit, ip := MaxDatagramSize, "IPv4"
		if x.ipv6 {
			limit, ip = MaxDatagramSizeIPv6, "IPv6"
		}
		detail = fmt.Sprintf("%d bytes is more than a UDP datagram carries (at most %d over %s)", len(x.messages[x.next]), limit, ip)
	}
	return &DatagramError{Addr: x.addr, Datagram: x.next + 1, Of: len(x.messages), Err: err, detail: detail}
}

// datagramMismatch compares the echo of datagram n with what was sent.
func datagramMismatch(n int, sent, got []byte) error {
	for j := range min(len(sent), len(got)) {
		if sent[j] != got[j] {
			return &MismatchError{Datagram: n, Offset: int64(j), Sent: sent[j], Received: got[j]}
		}
	}
	switch {
	case len(got) < len(sent):
		return &MismatchError{Datagram: n, Offset: int64(len(got)), Short: true}
	case len(got) > len(sent):
		return &MismatchError{Datagram: n, Offset: int64(len(sent)), Received: got[len(sent)], Extra: true}
	}
	return nil
}

// DatagramError reports that datagram Datagram (counted from 1) of the Of
// that SendPackets was sending to Addr failed: its echo never came back
// (Err is ErrNoEcho), or it could not be sent or received.
type DatagramError struct {
	Addr     string
	Datagram int
	Of       int
	Err      error

	detail string // replaces the cause in the message, if set
}

// Error returns "echo ADDR: datagram N of M: CAUSE", as in "echo
// udp://localhost:10000: datagram 2 of 3: no echo after 3 attempts in 10s".
func (e *DatagramError) Error() string {
	cause := e.detail
	if cause == "" {
		cause = rootCause(e.Err).Error()
	}
	return "echo " + e.Addr + ": datagram " + strconv.Itoa(e.Datagram) + " of " + strconv.Itoa(e.Of) + ": " + cause
}

// Unwrap returns the underlying error.
func (e *DatagramError) Unwrap() error { return e.Err }

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

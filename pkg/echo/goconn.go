package echo

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// The goroutine engine (engineFor): a goroutine per connection reads and
// writes through the connection's net.Conn, with socket deadlines for the
// timeouts and for Shutdown. It serves TLS, listeners the package did not
// make, and everything on systems without event loops.

// goConn is a connection served by a goroutine of its own: the shared
// policy (conn) and the goroutine's I/O state.
type goConn struct {
	conn
	rwc net.Conn

	// readBy and writeBy are the deadlines last set by armRead and
	// armWrite, which move them only when they fall short (timeouts.go).
	readBy, writeBy time.Time

	// stopWriteBy is, once stopping is set, the UnixNano time by which the
	// last write must be done.
	stopWriteBy atomic.Int64

	// run is the connection's stages at work (stage.go); nil without.
	run *stageRun

	// watch is its write stall limit's watch of the send queue
	// (write_watch.go), made by the first write back that blocks with one.
	watch *writeWatch
}

// isTLS reports whether the connection starts with a TLS handshake.
func (c *goConn) isTLS() bool {
	_, ok := c.rwc.(*tls.Conn)
	return ok
}

// serve runs one connection on its own goroutine (the goroutine engine;
// see engineFor): it completes a TLS handshake, echoes until the peer
// half-closes or the connection fails, and logs why it closed.
func (c *goConn) serve() {
	reason := CloseError
	var err error
	defer func() {
		if r := recover(); r != nil {
			c.log(zerolog.ErrorLevel).Interface("panic", r).Msg("panic serving connection")
			reason = CloseError
		}
		c.close(err)
		c.finish(reason)
	}()
	if c.isTLS() && c.lconf.opts.ProxyProtocol {
		if err = c.proxyFirst(); err != nil {
			reason = c.closeReason(err)
			if c.stopping.Load() || c.srv.shuttingDown() && errors.Is(err, net.ErrClosed) { // as handshake
				reason = CloseShutdown
				c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
				return
			}
			c.logClose(err, reason)
			return
		}
	}
	if why, ok := c.handshake(); !ok { // TLS only (tls.go)
		reason = why
		return
	}
	if c.acceptLater {
		c.logAccepted() // after the handshake, which may refuse the peer
	}

	err = c.echo()
	reason = c.closeReason(err)
	if c.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		var op *opError
		if !errors.As(err, &op) || op.op != "write" {
			reason = c.closeForShutdown() // the read Shutdown's deadline stopped
			return
		}
		// Its last write back did not finish by Shutdown's deadline,
		// which leaves no time for what waits unread (echoQueued).
		c.echoLost()
		c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
		if !c.isTLS() { // TLS closes at once (close): its half-close would wait for close_notify
			lingerClose(c.rwc, time.Unix(0, c.stopWriteBy.Load()))
		}
		return
	}
	c.logClose(err, reason)
}

// echo is the goroutine engine's echo loop: read, write all of it back,
// wait for the write to finish, repeat until end of stream. When data is
// logged it reads at most BufferSize bytes at a time, the seed's reads,
// and logs each chunk when read and once written back; otherwise it reads
// into a pooled buffer of fastBufferSize, so that bulk transfers move in
// few system calls. Either way it writes everything it read before it
// reads again, so a peer that does not read stalls only itself.
func (c *goConn) echo() error {
	err := c.echoUntilEnd()
	if c.run != nil && c.run.ended != endNone {
		return c.end(c.run.ended) // the stages end it (a fault)
	}
	return err
}

// echoUntilEnd is echo until the peer or an error ends it, or an ending
// of the stages is due (stageRun.ending).
func (c *goConn) echoUntilEnd() error {
	logs := c.srv.logsData()
	var buf []byte
	if logs {
		buf = make([]byte, c.srv.bufferSize())
	} else {
		bufp := fastBuffers.Get().(*[]byte)
		defer fastBuffers.Put(bufp)
		buf = *bufp
	}
	chain := c.lconf.stages
	if c.isTLS() {
		chain = c.lconf.tlsStages // the PROXY stage has read (proxyFirst)
	}
	if c.run != nil && chain != nil {
		// With none that applies, c.run stays empty: the plain echo.
		if chain.start(c.run, &c.conn, time.Now()) {
			if c.run.enders != nil && c.run.ending(false) != endNone {
				return nil // refused: not even a greeting (as a loop's opened)
			}
			if c.run.slices {
				sendOneByOne(c.rwc)
			}
			p, err := c.open(buf)
			if err == nil && len(p) > 0 { // read with the end of a header
				err = c.echoChunk(p, logs)
			}
			if err != nil {
				return err
			}
		}
	}
	ends := c.run != nil && c.run.enders != nil
	for {
		if ends && c.run.ending(false) != endNone {
			return nil
		}
		c.armRead()
		if ends {
			c.armEnd()
		}
		n, err := c.rwc.Read(buf)
		if n > 0 {
			if werr := c.echoChunk(buf[:n], logs); werr != nil {
				return werr
			}
		}
		if err != nil {
			if ends && errors.Is(err, os.ErrDeadlineExceeded) && !c.stopping.Load() && c.run.ending(false) != endNone {
				return nil
			}
			return &opError{"read", err}
		}
	}
}

// armEnd makes the next read end when an ending of the stages is due by
// time, if that comes before the idle timeout's deadline.
func (c *goConn) armEnd() {
	at := c.run.endAt()
	if at.IsZero() || (!c.readBy.IsZero() && c.readBy.Before(at)) {
		return
	}
	c.rwc.SetReadDeadline(at)
	if c.stopping.Load() { // keep Shutdown's, as armRead does
		c.rwc.SetReadDeadline(aLongTimeAgo)
	}
}

// end ends the connection as its stages decided (stage.go's endings): a
// lingering close after FIN, a reset, or a stall until the idle timeout,
// Shutdown's deadline or Close.
func (c *goConn) end(e ending) error {
	switch e {
	case endClose:
		lingerClose(c.rwc, time.Now().Add(drainLinger))
	case endReset:
		resetConn(c.rwc)
	case endStall:
		if idle := c.srv.idleTimeout(); idle <= 0 {
			<-c.run.wake
		} else if c.run.sleep(idle) {
			return &opError{"read", os.ErrDeadlineExceeded} // the idle timeout
		}
		// Shutdown's deadline (or Close): FIN, and what the peer sent
		// meanwhile read and dropped, not a reset for unread bytes.
		lingerClose(c.rwc, time.Now().Add(drainLinger))
	}
	return &opError{"fault", errFault}
}

// resetConn closes rwc with an RST: SO_LINGER 0 on its socket (under
// TLS, the TCP connection's), so that what is unsent is dropped. A
// connection that cannot set it is only closed.
func resetConn(rwc net.Conn) {
	if tc, ok := rwc.(*tls.Conn); ok {
		rwc = tc.NetConn()
	}
	if l, ok := rwc.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
	rwc.Close()
}

// echoChunk writes back p, just read, logging it when data is logged.
func (c *goConn) echoChunk(p []byte, logs bool) error {
	if logs {
		c.logData("received ", p)
	}
	n, err := c.write(p, c.received(len(p)))
	if logs && n > 0 {
		c.logData("sent ", p[:n]) // what went, when a fault or an error cut it
	}
	return err
}

// open runs the connection's open stages (stage.go): it reads what they
// want to read, within their time bound, then writes their greeting. It
// returns the bytes read past what they took, the start of the echo.
func (c *goConn) open(buf []byte) (p []byte, err error) {
	if c.run.reading() > 0 {
		if p, err = c.openRead(c.rwc, c.run, buf); err != nil {
			return nil, err
		}
	}
	if g := c.run.greeting(); len(g) > 0 {
		if _, err := c.writeAll(g); err != nil {
			return nil, &opError{"write", err}
		}
	}
	return p, nil
}

// openRead hands what it reads from rc to the open stages of run until
// they want no more, and returns what is left of the last read.
func (c *goConn) openRead(rc net.Conn, run *stageRun, buf []byte) ([]byte, error) {
	if !run.openBy.IsZero() {
		rc.SetReadDeadline(run.openBy)
		if c.stopping.Load() { // Shutdown's deadline came first: keep its, as armRead does
			rc.SetReadDeadline(aLongTimeAgo)
		}
	}
	for {
		n, err := rc.Read(buf)
		p, terr := run.take(buf[:n])
		if terr != nil {
			return nil, &opError{"open", terr}
		}
		if run.reading() == 0 {
			rc.SetReadDeadline(time.Time{}) // armRead sets the idle timeout's
			if c.stopping.Load() {
				rc.SetReadDeadline(aLongTimeAgo)
			}
			if len(p) == 0 && err != nil {
				return nil, &opError{"read", err}
			}
			return p, nil // a read error comes again with the next read
		}
		if err != nil && !c.stopping.Load() {
			if cerr := run.cutShort(err); cerr != nil {
				return nil, &opError{"open", cerr}
			}
			if errors.Is(err, os.ErrDeadlineExceeded) { // a stage's bound, not the idle timeout
				return nil, &opError{"open", os.ErrDeadlineExceeded}
			}
		}
		if err != nil {
			return nil, &opError{"read", err}
		}
	}
}

// proxyFirst reads the PROXY header of a TLS connection from the
// connection below TLS, before the handshake, as balancers send it
// (HAProxy's send-proxy-v2-ssl), and leaves what came after the header
// for the handshake to read first (headConn). Bind makes a PROXY tls://
// listener's connections headConns (headListener); a TLS listener made
// elsewhere cannot take a header first, and its connections are refused.
func (c *goConn) proxyFirst() error {
	hc, ok := c.rwc.(*tls.Conn).NetConn().(*headConn)
	if !ok {
		return &opError{"open", errors.New("a PROXY header cannot be read before the TLS handshake on a TLS listener that Bind did not make")}
	}
	run := &stageRun{}
	(&stages{open: []openStage{proxyStage{}}}).start(run, &c.conn, time.Now())
	buf := make([]byte, proxyV2PrefixLen+proxyV2MaxBody)
	p, err := c.openRead(hc.Conn, run, buf)
	if err != nil {
		return err
	}
	hc.head = append([]byte(nil), p...)
	return nil
}

// writePaced writes p as the connection's write stages say: piece by
// piece, each after its wait. Shutdown's deadline and Close end the waits
// (stageRun.stop): the rest is then written at once.
func (c *goConn) writePaced(p []byte) (int, error) {
	c.run.startChunk(p)
	written := 0
	for written < len(p) {
		if c.run.enders != nil && c.run.ending(true) != endNone {
			return written, errFault
		}
		n, wait := c.run.next(len(p) - written)
		if wait > 0 {
			c.run.sleep(wait)
		}
		m, err := c.writeAll(p[written : written+n])
		written += m
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// stop makes serve stop at its next read, for a Shutdown whose context
// ended: what was read is still written back (if the peer reads within
// drainLinger), then the connection closes cleanly (closeForShutdown).
func (c *goConn) stop() {
	now := time.Now()
	c.stopWriteBy.Store(now.Add(drainLinger).UnixNano())
	c.stopping.Store(true)
	c.rwc.SetReadDeadline(now)
	c.rwc.SetWriteDeadline(now.Add(drainLinger))
	if c.run != nil {
		c.run.stop()
	}
}

// abort closes the connection at once: serve's read or write fails and it
// ends.
func (c *goConn) abort() {
	c.rwc.Close()
	if c.run != nil {
		c.run.stop()
	}
}

// closeForShutdown ends a connection that is still open when the shutdown
// deadline passes: it writes back what the peer sent before the deadline
// and the server had not read yet, sends FIN, then reads and discards what
// the peer still sends until drainLinger after the deadline (a lingering
// close, as nginx does), so that the peer sees an orderly end of stream
// rather than a reset. A fault's ending due within what was owed cuts it
// there (stageRun.next): a reset then closes with an RST (CloseFault, as
// on a loop); a close or a stall ends as the lingering close does.
func (c *goConn) closeForShutdown() CloseReason {
	c.log(zerolog.InfoLevel).Str("reason", "shutdown").Msg("closing")
	c.echoQueued()
	if c.run != nil && c.run.enders != nil && c.run.ending(false) == endReset {
		resetConn(c.rwc)
		return CloseFault
	}
	lingerClose(c.rwc, time.Unix(0, c.stopWriteBy.Load()))
	return CloseShutdown
}

// lingerClose is the goroutine engine's lingering close: it sends FIN
// (when rwc can half-close; a TLS connection sends close_notify first),
// then reads and discards what the peer still sends until it ends or until
// by, so that the peer reads what was written before rather than a reset,
// which data left unread would make the close send. The caller closes rwc.
// (An event loop does the same without blocking: loop.shutWrite and
// loop.discard.)
func lingerClose(rwc net.Conn, by time.Time) {
	cw, ok := rwc.(interface{ CloseWrite() error })
	if ok && cw.CloseWrite() != nil {
		return
	}
	rwc.SetReadDeadline(by)
	bufp := fastBuffers.Get().(*[]byte)
	defer fastBuffers.Put(bufp)
	buf := *bufp
	for {
		if _, err := rwc.Read(buf); err != nil {
			return
		}
	}
}

// echoQueued writes back the bytes waiting unread in the socket's receive
// queue when the shutdown deadline passed (all the peer sent before it),
// within drainLinger.
func (c *goConn) echoQueued() {
	n := queuedBytes(c.rwc)
	if n == 0 {
		return
	}
	c.rwc.SetReadDeadline(time.Unix(0, c.stopWriteBy.Load()))
	bufp := fastBuffers.Get().(*[]byte)
	defer fastBuffers.Put(bufp)
	buf := *bufp
	for n > 0 {
		m, err := c.rwc.Read(buf[:min(n, len(buf))])
		if m > 0 {
			if _, err := c.write(buf[:m], c.received(m)); err != nil {
				if !errors.Is(err, errFault) { // a fault's ending is no loss
					c.echoLost()
				}
				return
			}
			n -= m
		}
		if err != nil {
			return
		}
	}
}

// write writes p back to the peer, reporting it to the observer with the
// latency since readAt; its stages, if it has any, may cut it into pieces
// and hold them (writePaced). n is how much of p went, all of it unless
// err says why not.
func (c *goConn) write(p []byte, readAt time.Time) (n int, err error) {
	if c.run == nil || len(c.run.pacers) == 0 {
		n, err = c.writeAll(p)
	} else {
		n, err = c.writePaced(p)
	}
	c.sent(n, err == nil, readAt)
	if err != nil {
		return n, &opError{"write", err}
	}
	return n, nil
}

// writeAll writes p. With a write stall limit (WriteTimeout or
// IdleTimeout) each stretch of that long without progress fails the
// write; a write that progresses, however slowly, goes on.
func (c *goConn) writeAll(p []byte) (n int, err error) {
	stall := c.srv.writeStall()
	if stall <= 0 {
		return c.rwc.Write(p)
	}
	for {
		c.armWrite()
		w := c.watchWrite(stall)
		var m int
		m, err = c.rwc.Write(p[n:])
		w.done()
		n += m
		if err == nil || m == 0 || c.stopping.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
	}
}

// setWriteDeadline sets the write deadline to t, or to Shutdown's when
// Shutdown has stopped the connection and wants it done sooner.
func (c *goConn) setWriteDeadline(t time.Time) {
	c.rwc.SetWriteDeadline(t)
	if c.stopping.Load() {
		if by := time.Unix(0, c.stopWriteBy.Load()); by.Before(t) {
			c.rwc.SetWriteDeadline(by)
		}
	}
}

// close closes the connection that err ended. A TLS connection whose
// write back failed (a write timeout: the peer reads nothing) has its
// socket closed at once: tls.Conn.Close would first try to send the
// close_notify alert into the same full socket, for up to five seconds of
// its own, and under load that made a 3s write timeout close at 8s and
// later. The alert could not be read anyway (the peer does not read) and
// the record stream is broken by the partial write.
func (c *goConn) close(err error) {
	if c.watch != nil {
		c.watch.t.Stop()
	}
	if c.tlsWriteFailed(err) {
		c.rwc.(*tls.Conn).NetConn().Close()
		return
	}
	c.rwc.Close()
}

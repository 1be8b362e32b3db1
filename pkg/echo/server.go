package echo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Defaults used when the corresponding Server or Client field is zero.
const (
	// DefaultAddr is the seed's SERVER_ADDRESS.
	DefaultAddr = "localhost:10000"
	// DefaultBufferSize is the seed's reader.read(128).
	DefaultBufferSize = 128
	// MaxBufferSize bounds BufferSize: 16 MiB.
	MaxBufferSize = 16 << 20
	// MaxBusyPoll bounds BusyPoll: a loop that looks for work for longer
	// than this without finding any should sleep.
	MaxBusyPoll = 100 * time.Millisecond
)

// drainLinger bounds how long a connection that is still open when the
// Shutdown context ends may take to flush its last echo and close cleanly.
const drainLinger = time.Second

// A Server echoes every byte it reads on a connection back to the peer.
// The zero value is ready to use and serves with the seed's defaults.
//
// A Server must not be copied after first use.
type Server struct {
	// Addr is the address ListenAndServe listens on: "host:port" for TCP,
	// or a URL that ParseAddr accepts: tcp://host:port, udp://host:port,
	// tls://host:port or unix:///absolute/path. If empty, DefaultAddr
	// ("localhost:10000") is used. A host name is listened on at every
	// address it resolves to, as asyncio.start_server does; an empty host
	// listens on all interfaces. Bind takes several addresses at once.
	Addr string

	// BufferSize is the most a connection reads at a time while its data
	// is logged (at debug level: the seed's reads, one transcript line
	// each) before it writes the bytes back and waits for the write to
	// complete. If zero, DefaultBufferSize (128) is used. It must not
	// exceed MaxBufferSize. When data is not logged, both engines read up
	// to 64 KiB at a time, which changes no byte of the echo, only how
	// many system calls carry it.
	BufferSize int

	// Logger receives the server's log lines: "main" for the server,
	// "echo_{host}_{port}" for each connection. The zero value logs nothing.
	Logger zerolog.Logger

	// Resolver resolves the host names that Bind (and so ListenAndServe)
	// listens on. If nil, net.DefaultResolver is used.
	Resolver Resolver

	// ListenConfig configures the sockets that Bind (and so
	// ListenAndServe) makes, except Multipath TCP: Bind's TCP and TLS
	// listeners are plain TCP sockets, as the seed's are, although Go's
	// net makes MPTCP ones by default since Go 1.24 (to serve MPTCP, make
	// the listener and pass it to Serve).
	// Its keep-alive settings (KeepAlive, KeepAliveConfig) also apply to
	// the TCP connections that event loops serve (loop_linux.go), which
	// inherit them from their listening socket, whoever made it.
	ListenConfig net.ListenConfig

	// MaxConns is the most connections served at once, over all
	// listeners. Past it a new connection is accepted and closed at once,
	// so that it never waits in the listen backlog; such refusals are
	// reported to the Observer (CloseLimit) and logged at warn at most once
	// a second. Zero means no limit.
	MaxConns int

	// MaxConnsPerIP is the most connections served at once from one peer
	// IP address, refused as for MaxConns past it. Peers without an IP
	// address (Unix sockets) are not limited. Zero means no limit.
	MaxConnsPerIP int

	// IdleTimeout closes a connection on which no byte has moved either
	// way for that long (to within a sixteenth more): the peer sent
	// nothing, and nothing was waiting to be written back, or a write back
	// made no progress. Zero means connections may stay idle for ever. It
	// must not exceed MaxTimeout (10000h).
	IdleTimeout time.Duration

	// WriteTimeout closes a connection whose peer has read none of the
	// echo for that long (to within a sixteenth more): a write back that
	// makes no progress. It bounds
	// how long a peer that stops reading holds its connection and buffer.
	// A peer that reads slowly but steadily is not cut off. Zero means no
	// timeout (the peer then stalls only its own connection). It must not
	// exceed MaxTimeout (10000h).
	WriteTimeout time.Duration

	// Allow and Deny are the access list, with the semantics of ncat's
	// --allow and --deny: a peer whose IP address is in a Deny prefix is
	// refused; otherwise, if Allow is not empty, only peers in one of its
	// prefixes are served. Refused connections are closed before any byte
	// is read, reported to the Observer (CloseDenied) and logged at info.
	// IPv4-mapped IPv6 peers are matched as IPv4; peers without an IP
	// address (Unix sockets) are not filtered. On UDP (ServePacket), a
	// refused sender's datagrams are dropped unanswered, reported to the
	// Observer (DropDenied) and logged at info at most once a second. Both
	// empty: every peer is served. ParsePrefix parses entries.
	Allow, Deny []netip.Prefix

	// Observer, if not nil, is told about listeners, connections and the
	// bytes they echo: it is where metrics attach. Its per-chunk methods
	// are called only when it is set. ServePacket reports when its socket
	// starts and stops serving (Listening), and its datagrams if the
	// Observer is a PacketObserver.
	Observer Observer

	// LogMaxBytes is the most bytes of a chunk that a debug log line
	// ("received b'...'") shows; the rest is summed up as
	// "... (N more bytes)". If zero, DefaultLogMaxBytes (256) is used; a
	// negative value shows every byte.
	LogMaxBytes int

	// TLSConfig configures the TLS of tls:// addresses; it must hold a
	// certificate (Certificates, GetCertificate or GetConfigForClient).
	// Versions below TLS 1.2 are never negotiated: a lower MinVersion is
	// raised. Set ClientAuth and ClientCAs for mutual TLS. Unused by other
	// addresses; nil makes tls:// addresses an error (ErrNoTLSConfig).
	TLSConfig *tls.Config

	// HandshakeTimeout bounds the TLS handshake of each connection on a
	// tls:// address. If zero, DefaultHandshakeTimeout (10s) is used.
	HandshakeTimeout time.Duration

	// BusyPoll is how long an event loop goes on looking for work without
	// sleeping after it last found some. A message that comes within it
	// is served without waking a sleeping thread, which costs tens of
	// microseconds of latency on virtual machines and on CPUs that reach
	// deep idle states. The price is CPU: under steady traffic a loop stays
	// busy all the time, up to a whole CPU per loop (one per CPU). Zero,
	// the default, sleeps as soon as nothing is ready. It applies where
	// event loops serve: plain TCP and Unix sockets on Linux (see
	// engineFor); Serve logs a warning for any other listener. It must be
	// between zero and MaxBusyPoll.
	BusyPoll time.Duration

	// UnixMode is the permission given to the socket file of a unix://
	// address. If zero, DefaultUnixMode (0660) is used.
	UnixMode os.FileMode

	// UDPAllowLowPorts makes ServePacket answer datagrams from source
	// ports 1 to 1023, which it drops by default (DropLowPort) as OpenBSD
	// inetd does: they belong to system services, which may answer back.
	// Set it for a lab. Port 0, the well-known services that answer back
	// (echo 7, discard 9, daytime 13, qotd 17, chargen 19, time 37, dns 53,
	// ntp 123, snmp 161, ssdp 1900, memcached 11211) and the server's own
	// sockets stay refused.
	UDPAllowLowPorts bool

	// UDPRatePerSource bounds what ServePacket answers to one source IP
	// address, so that a sender forging a victim's address cannot use the
	// server against it: past the rate, datagrams are dropped
	// (DropRateLimit). If nil, DefaultUDPDatagramsPerSource (100)
	// datagrams and DefaultUDPBytesPerSource (256 KiB) a second are
	// answered, with a burst of one second's worth. A zero PacketRate
	// turns the limit off, for benchmarks on a lab network. The sources
	// are tracked in a table of at most 8192 recently active addresses; a
	// new source finding it full is dropped (DropRateTableFull).
	UDPRatePerSource *PacketRate

	// ListenerOptions are the per-listener settings (the PROXY protocol,
	// faults for one listener) of every listener: Serve's, and those of
	// the addresses given to Bind that do not override them in their query
	// (ParseListenAddr). The zero value is the seed's plain echo.
	ListenerOptions ListenerOptions

	// Greeting, if not empty, is a template for one line written to every
	// TCP, TLS and Unix connection when it opens, before any echo, so that
	// a client can tell which server answered (behind a load balancer).
	// Fields in braces are replaced: {hostname} (os.Hostname), {env:NAME}
	// (an environment variable, which must be set), both read once when
	// the Server starts; {listener} (the address that accepted the
	// connection), {peer} (the client as the server sees it), {peer-ip}
	// (its address alone), {via} (the balancer a PROXY header came
	// through, else empty) and {proxy} (what the header said, else
	// "none"). {{ and }} stand for braces. The line
	// ends with a newline, added if the template has none; it may hold no
	// other line break, and is at most MaxGreeting bytes (a longer fixed
	// part is an error; fields that vary are cut to fit). Serve returns an
	// error wrapping ErrInvalidGreeting for a template that is not valid
	// (ValidateGreeting checks one). Never written on UDP (ServePacket),
	// where an answer must not be larger than its datagram: that is logged
	// once. Empty, the default: no greeting, and the echo is byte for byte
	// what the client sent.
	Greeting string

	// Faults, if it injects any, makes every listener misbehave on
	// purpose: on stream connections (TCP, TLS, Unix sockets) delayed,
	// sliced or paced echoes, a close, reset or stall after some bytes or
	// some time, a flipped bit, a connection refused; on UDP answers
	// dropped, duplicated, reordered, delayed or corrupted
	// (docs/faults.md). They are the default of every listener, whose
	// ListenerOptions.Faults may set keys over them. It is read when the
	// Server first serves; SetFaults changes the faults later. Nil: no
	// fault, at no cost; a zero Faults injects none either, but lets
	// SetFaults add some, for a check per connection (per datagram).
	Faults *Faults

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	connsWG    sync.WaitGroup
	inShutdown atomic.Bool
	res        resilience // limits and accept back-off (limits.go)

	packetConns  map[*net.PacketConn]struct{} // served by ServePacket (packet.go)
	packetWG     sync.WaitGroup               // one count per packetConns entry
	udp          udpGuard                     // loop and reflection guard of ServePacket (packet_guard.go)
	unixConns    atomic.Uint64                // numbers Unix connections: echo_unix_{n}
	loops        loops                        // event loops (loop_linux.go; see engineFor)
	noLoops      bool                         // serve with goroutines only (for tests; engineFor)
	stages       *stages                      // applied to every stream connection; nil: none (stage.go)
	greeting     greetingStart                // Greeting's stage, set up once (greeting.go)
	faults       sync.Once                    // reads Faults, once (fault_stage.go: startFaults)
	faultBase    atomic.Pointer[Faults]       // the faults every listener starts from, for SetFaults; nil: none
	faultStages  map[*faultStage]struct{}     // each listener's fault stage, for SetFaults (guarded by mu)
	deferSockets map[*deferSocket]struct{}    // the sockets whose TCP_DEFER_ACCEPT follows the faults (guarded by mu)
}

// ListenAndServe binds s.Addr (every address its host resolves to), as
// Bind does, and serves it until Shutdown or Close is called, when it
// returns ErrServerClosed, as ServeBound does. It returns any other error
// at once.
func (s *Server) ListenAndServe() error {
	return s.ListenAndServeContext(context.Background())
}

// ListenAndServeContext is ListenAndServe with a context for resolving and
// binding the listening addresses. Cancelling ctx does not stop serving;
// call Shutdown for that.
func (s *Server) ListenAndServeContext(ctx context.Context) error {
	if s.shuttingDown() {
		return ErrServerClosed
	}
	b, err := s.Bind(ctx)
	if err != nil {
		return err
	}
	return s.ServeBound(b)
}

// Serve accepts connections on ln and serves them until ln fails or the
// server shuts down: on the event loops when ln is a *net.TCPListener or
// *net.UnixListener on Linux, else each in its own goroutine (the
// package's engine table). It always closes ln. After Shutdown or Close
// it returns ErrServerClosed. Transient accept errors (such as running out
// of file descriptors, or a net.Error that says it is temporary) are
// logged and retried with a delay that grows from 5ms to 1s.
//
// Closing ln yourself ends Serve, as in net/http; on the event loops,
// which accept on a duplicate of ln's socket, within 250ms, and the loops
// (a goroutine and a few descriptors each) stay until Shutdown or Close,
// serving the connections already accepted. Shutdown or Close, rather than
// closing ln, stops a server at once.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, nil, s.ListenerOptions, func() {}) }

// serve is Serve, with opts for ln's connections and sock the TCP socket
// under ln if Bind made it (else nil; watchDeferAccept); it calls started once
// ln is served (tracked, and told to the Observer), before it accepts, or
// when it returns without serving, whichever is first.
func (s *Server) serve(ln net.Listener, sock *net.TCPListener, opts ListenerOptions, started func()) error {
	defer started()
	if err := s.validate(); err != nil {
		ln.Close()
		return err
	}
	// engineFor says who serves ln's connections: event loops, which
	// accept too (loop_linux.go), or a goroutine per connection.
	lname := ln.Addr().String()
	lconf, err := s.newListenerConf(lname, opts)
	if err != nil {
		ln.Close()
		return err
	}
	s.res.mu.Lock() // its held warnings are flushed at the end (flushHeldLogs)
	s.res.lconfs = append(s.res.lconfs, lconf)
	s.res.mu.Unlock()
	defer s.dropFaultStage(lconf.faults)
	defer s.watchDeferAccept(sock, lconf)()
	tracked, serveLoops := ln, (func(*listenerConf) error)(nil)
	if s.engineFor(ln) == engineLoops {
		ll, serve, err := s.loopListen(ln)
		switch {
		case err == nil:
			tracked, serveLoops = ll, serve
		case !errors.Is(err, net.ErrClosed) && !errors.Is(err, ErrServerClosed): // both end Serve below
			s.Logger.Warn().Str("logger", "main").Str("listener", lname).Err(err).
				Msgf("event loops cannot serve %s, so a goroutine per connection serves it: %v", lname, err)
		}
	}
	loopServed := serveLoops != nil
	if !loopServed {
		s.warnBusyPollUnused(ln.Addr())
	}
	if !s.trackListener(&tracked, true) {
		tracked.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&tracked, false)
	defer tracked.Close()
	if s.Observer != nil {
		s.Observer.Listening(lname, true)
		defer s.Observer.Listening(lname, false)
	}
	started()
	if loopServed {
		return serveLoops(lconf)
	}

	var backoff acceptBackoff
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) || !isTransientAcceptError(err) {
				return fmt.Errorf("echo: accept on %s: %w", ln.Addr(), err)
			}
			s.acceptPause(backoff.failed(s, lname, err))
			continue
		}
		backoff.accepted(s, lname)
		c := &goConn{rwc: rwc}
		if lconf.stages != nil {
			c.run = newStageRun() // started by serve (goConn.open)
		}
		serve, ok := s.accepted(&c.conn, c, rwc.LocalAddr(), peerAddr{addr: rwc.RemoteAddr()}, lconf, !c.isTLS())
		if !serve {
			rwc.Close()
		}
		if !ok {
			return ErrServerClosed
		}
		if serve {
			go c.serve()
		}
	}
}

// warnBusyPollUnused logs, when BusyPoll is set, that it does nothing for
// addr, which no event loop serves: a UDP socket, or a listener that
// goroutines serve.
func (s *Server) warnBusyPollUnused(addr net.Addr) {
	if s.BusyPoll <= 0 {
		return
	}
	name, why := addr.String(), "event loops serve only plain TCP and Unix sockets on Linux, not TLS or wrapped listeners"
	if addr.Network() == "udp" {
		name, why = "udp://"+name, "event loops serve only TCP and Unix sockets, not UDP"
	}
	s.Logger.Warn().Str("logger", "main").Str("listener", name).
		Msgf("busy poll has no effect on %s: %s", name, why)
}

// accepted sets up c, whose engine's side is io, for a connection from
// peer just accepted on the listener lconf (local is its address): it
// names it, applies the limits and the access list, and counts and logs
// it. It reports whether to serve it; when not, the engine closes it. ok
// is false once the server shuts down. logNow is false for a TLS
// connection, logged once its handshake has passed.
func (s *Server) accepted(c *conn, io connIO, local net.Addr, peer peerAddr, lconf *listenerConf, logNow bool) (serve, ok bool) {
	c.srv, c.io, c.acceptLater = s, io, !logNow
	s.nameConn(c, local, peer)
	s.guardConn(c, lconf, peer)
	if !s.admit(c, peer) {
		return false, true
	}
	if !s.trackConn(c, true) {
		s.release(c)
		c.refuse(CloseShutdown)
		return false, false
	}
	if logNow && !lconf.opts.ProxyProtocol {
		// A PROXY listener's connection is logged as accepted once its
		// header says whose it is (conn.proxied): one line, as any other.
		// Logged here, on the accept loop's already grown stack: on the
		// connection's goroutine the logging call chain would grow a
		// fresh 2 KiB stack.
		c.logAccepted()
	}
	return true, true
}

func (s *Server) validate() error {
	if s.BufferSize < 0 || s.BufferSize > MaxBufferSize {
		return fmt.Errorf("%w: %d (must be between 1 and %d)", ErrInvalidBufferSize, s.BufferSize, MaxBufferSize)
	}
	if s.BusyPoll < 0 || s.BusyPoll > MaxBusyPoll {
		return fmt.Errorf("%w: %v (must be between 0 and %v)", ErrInvalidBusyPoll, s.BusyPoll, MaxBusyPoll)
	}
	if err := s.startGreeting(); err != nil {
		return err
	}
	if err := s.startFaults(); err != nil {
		return err
	}
	return s.validateTimeouts()
}

func (s *Server) bufferSize() int {
	if s.BufferSize == 0 {
		return DefaultBufferSize
	}
	return s.BufferSize
}

func (s *Server) shuttingDown() bool { return s.inShutdown.Load() }

// trackListener adds or removes ln; adding fails once the server shuts down.
func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.shuttingDown() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	return true
}

// trackConn adds or removes c; adding fails once the server shuts down.
func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		s.connsWG.Done()
		return true
	}
	if s.shuttingDown() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.connsWG.Add(1)
	return true
}

// closeListeners marks the server as shutting down and closes every
// listener, so that Serve returns ErrServerClosed.
func (s *Server) closeListeners() error {
	s.mu.Lock()
	s.inShutdown.Store(true)
	s.res.closeDone()
	var err error
	var waits []interface{ waitReleased() }
	for ln := range s.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
		if w, ok := (*ln).(interface{ waitReleased() }); ok {
			waits = append(waits, w)
		}
	}
	s.mu.Unlock()
	// The event loops accept on a duplicate of a listener's socket, which
	// its Serve closes once they let it go: the port is free when Shutdown
	// and Close return, as net/http's. Not under mu, which a loop may be
	// waiting for as it accepts.
	for _, w := range waits {
		w.waitReleased()
	}
	return err
}

// forEachConn calls f on every open connection.
func (s *Server) forEachConn(f func(*conn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		f(c)
	}
}

// Shutdown stops the server gracefully: it closes every listener at once,
// then waits for open connections to finish their echo (the peer
// half-closes and the server writes back what it read). If ctx ends first,
// each remaining connection stops reading what arrives from then on, writes
// back what the peer sent before (what it read and, on Linux, what waits
// unread in the socket, but for TLS's encrypted records), sends FIN and
// closes within about a second; Shutdown then returns ctx.Err(). Serve and
// ListenAndServe return ErrServerClosed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock() // ServeBound logs its start-up lines before this, or none
	s.inShutdown.Store(true)
	s.Logger.Info().Str("logger", "main").Msg("closing server")
	s.mu.Unlock()
	lnErr := s.closeListeners()

	done := make(chan struct{})
	s.stopPacketConns(false)
	go func() {
		s.connsWG.Wait()
		s.packetWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.stopped()
		return lnErr
	case <-ctx.Done():
	}
	s.forEachConn(func(c *conn) { c.io.stop() })
	s.stopPacketConns(true)
	<-done
	s.stopped()
	return ctx.Err()
}

// Close stops the server at once: it closes every listener and every open
// connection, without waiting for echoes in progress. Use Shutdown for a
// graceful stop.
func (s *Server) Close() error {
	err := s.closeListeners()
	s.stopPacketConns(true)
	s.forEachConn(func(c *conn) { c.io.abort() })
	s.connsWG.Wait()
	s.packetWG.Wait()
	s.stopped()
	return err
}

// stopped ends what outlives the connections once none is left: the
// event loops, and the rate-limited warnings' counts still held back
// (flushHeldLogs).
func (s *Server) stopped() {
	s.loops.close()
	s.flushHeldLogs()
}

// flushHeldLogs logs the counts that the rate-limited warnings (logLimiter)
// still hold back, so that the log of a flood that ends at shutdown is
// complete.
func (s *Server) flushHeldLogs() {
	s.res.limitWarn.flush()
	s.res.deniedInfo.flush()
	s.res.acceptWarn.flush()
	s.res.mu.Lock()
	lconfs := s.res.lconfs
	s.res.mu.Unlock()
	for _, lc := range lconfs {
		for i := range lc.proxyWarns {
			lc.proxyWarns[i].flush()
		}
		for i := range lc.tlsWarns {
			lc.tlsWarns[i].flush()
		}
	}
	for i := range s.udp.dropLogs {
		s.udp.dropLogs[i].flush()
	}
	s.udp.writeLogs.flush()
}

package echo

import (
	"context"
	"errors"
	"fmt"
	"net"
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
)

// drainLinger bounds how long a connection that is still open when the
// Shutdown context ends may take to flush its last echo and close cleanly.
const drainLinger = time.Second

// A Server echoes every byte it reads on a connection back to the peer.
// The zero value is ready to use and serves with the seed's defaults.
//
// A Server must not be copied after first use.
type Server struct {
	// Addr is the address ListenAndServe listens on, as "host:port".
	// If empty, DefaultAddr ("localhost:10000") is used. A host name is
	// listened on at every address it resolves to, as asyncio.start_server
	// does; an empty host listens on all interfaces.
	Addr string

	// BufferSize is the most a connection reads before it writes the bytes
	// back and waits for the write to complete. If zero, DefaultBufferSize
	// (128) is used. It must not exceed MaxBufferSize.
	BufferSize int

	// Logger receives the server's log lines: "main" for the server,
	// "echo_{host}_{port}" for each connection. The zero value logs nothing.
	Logger zerolog.Logger

	// Resolver resolves the host in Addr. If nil, net.DefaultResolver is used.
	Resolver Resolver

	// ListenConfig configures the listening sockets made by ListenAndServe.
	ListenConfig net.ListenConfig

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	connsWG    sync.WaitGroup
	inShutdown atomic.Bool
}

// ListenAndServe listens on every address s.Addr resolves to and serves
// connections on all of them until Shutdown or Close is called, when it
// returns ErrServerClosed. It returns any other error at once.
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
	lns, err := s.Listen(ctx)
	if err != nil {
		return err
	}
	return s.ServeListeners(lns)
}

// ServeListeners serves on every listener in lns at once and returns when
// all of them have stopped: ErrServerClosed after Shutdown or Close, or the
// first other error (after closing the remaining listeners).
func (s *Server) ServeListeners(lns []net.Listener) error {
	s.logStart(lns)
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errs <- s.Serve(ln) }()
	}
	var first error
	for range lns {
		err := <-errs
		if first == nil || errors.Is(first, ErrServerClosed) {
			if first == nil || !errors.Is(err, ErrServerClosed) {
				first = err
			}
		}
		if !errors.Is(err, ErrServerClosed) {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}
	return first
}

func (s *Server) logStart(lns []net.Listener) {
	host, port := s.addrHostPort()
	if len(lns) > 0 {
		if _, p, err := net.SplitHostPort(lns[0].Addr().String()); err == nil {
			port = p
		}
	}
	if host == "" {
		host = "*"
	}
	addrs := zerolog.Arr()
	for _, ln := range lns {
		addrs.Str(ln.Addr().String())
	}
	s.Logger.Info().Str("logger", "main").Array("listeners", addrs).
		Msgf("starting up on %s port %s", host, port)
}

func (s *Server) addrHostPort() (host, port string) {
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return host, port
}

// Serve accepts connections on ln and serves each in its own goroutine
// until ln fails or the server shuts down. It always closes ln. After
// Shutdown or Close it returns ErrServerClosed. Transient accept errors
// (such as running out of file descriptors) are logged and retried with a
// delay that grows from 5ms to 1s.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.validate(); err != nil {
		ln.Close()
		return err
	}
	if !s.trackListener(&ln, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	defer ln.Close()

	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) || !isTransientAcceptError(err) {
				return fmt.Errorf("echo: accept on %s: %w", ln.Addr(), err)
			}
			delay = nextAcceptDelay(delay)
			s.Logger.Warn().Str("logger", "main").Err(err).Dur("retry_in", delay).
				Msgf("accept error: %v; retrying in %v", err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := s.newConn(rwc)
		if !s.trackConn(c, true) {
			rwc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

func nextAcceptDelay(delay time.Duration) time.Duration {
	if delay == 0 {
		return 5 * time.Millisecond
	}
	return min(2*delay, time.Second)
}

func (s *Server) validate() error {
	if s.BufferSize < 0 || s.BufferSize > MaxBufferSize {
		return fmt.Errorf("%w: %d (must be between 1 and %d)", ErrInvalidBufferSize, s.BufferSize, MaxBufferSize)
	}
	return nil
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
	defer s.mu.Unlock()
	s.inShutdown.Store(true)
	var err error
	for ln := range s.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
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
// each remaining connection stops reading, writes back what it has already
// read, sends FIN and closes within about a second; Shutdown then returns
// ctx.Err(). Serve and ListenAndServe return ErrServerClosed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Logger.Info().Str("logger", "main").Msg("closing server")
	lnErr := s.closeListeners()

	done := make(chan struct{})
	go func() {
		s.connsWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return lnErr
	case <-ctx.Done():
	}
	s.forEachConn((*conn).stopReading)
	<-done
	return ctx.Err()
}

// Close stops the server at once: it closes every listener and every open
// connection, without waiting for echoes in progress. Use Shutdown for a
// graceful stop.
func (s *Server) Close() error {
	err := s.closeListeners()
	s.forEachConn(func(c *conn) { c.rwc.Close() })
	s.connsWG.Wait()
	return err
}

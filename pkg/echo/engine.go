package echo

import "net"

// engine is what moves a connection's bytes: an event loop or a goroutine
// of its own.
type engine uint8

const (
	// engineGoroutines serves each connection with a goroutine that reads
	// and writes through its net.Conn (goconn.go).
	engineGoroutines engine = iota
	// engineLoops serves connections from event loops, one per CPU, that
	// own their raw sockets (loop_linux.go).
	engineLoops
)

func (e engine) String() string {
	if e == engineLoops {
		return "event loops"
	}
	return "goroutines"
}

// engineFor chooses the engine that serves the connections of ln. It is
// the one place that decides:
//
//	listener                                  Linux         other systems
//	*net.TCPListener (plain TCP)              event loops   goroutines
//	*net.UnixListener, unix:// (bindUnix)     event loops   goroutines
//	TLS (tls:// addresses)                    goroutines    goroutines
//	any other net.Listener (a wrapper)        goroutines    goroutines
//
// Whatever else is set — IdleTimeout, WriteTimeout, data logging (a Logger
// at debug level), BufferSize, limits, the access list, an Observer — the
// engine is the same, and so are the bytes on the wire, the logs, the
// limits and the shutdown. Event loops need the socket as a descriptor the
// server owns, which TLS (whose records a tls.Conn encrypts) and a
// listener the package does not know (which may wrap its connections) do
// not give. Nor can the loops take a listener whose socket cannot be
// duplicated for them (the process is out of descriptors): Serve then
// logs a warning and goroutines serve it. The noLoops test knob sends everything to goroutines, so that
// the tests run every behaviour on both engines.
func (s *Server) engineFor(ln net.Listener) engine {
	if !loopsAvailable || s.noLoops {
		return engineGoroutines
	}
	switch ln.(type) {
	case *net.TCPListener, *net.UnixListener, *unixListener:
		return engineLoops
	}
	return engineGoroutines
}

// Package echo implements the echo server and client behind echoctl, over
// TCP, TLS, Unix domain sockets and UDP (RFC 862).
//
// It is the Go counterpart of the asyncio streams echo server and client in
// PyMOTW-3: the [Server] reads what each connection sends (BufferSize
// bytes at a time when its data is logged, as the seed's reads), writes it
// back, waits for the write to complete before it reads again,
// and closes the connection when the peer half-closes its side. The [Client]
// sends messages, half-closes, and reads the echo until the server closes,
// verifying every byte against what it sent.
//
// The package is shaped like net/http: a Server whose zero value serves with
// the seed's defaults (localhost:10000, a 128-byte BufferSize), Serve(net.Listener)
// at its centre, ListenAndServe as a thin wrapper, and Shutdown(ctx) for a
// graceful stop. Loggers are passed in as fields; the zero Logger logs
// nothing.
//
// Addresses are "host:port" (TCP) or URLs that [ParseAddr] reads:
// tcp://, udp://, tls://host:port and unix:///path. TLS and Unix sockets
// are listeners like TCP's and go through Serve; UDP has no connections and
// is served by [Server.ServePacket], as net splits Listener from
// PacketConn. [Server.Bind] opens the sockets of several addresses at once
// and [Server.ServeBound] serves them all until one Shutdown; a [Bound]
// filled by hand serves sockets opened elsewhere the same way.
//
// Some settings apply per listener ([ListenerOptions]): Server.ListenerOptions
// holds every listener's, and an address given to Bind may override them
// in a query ([ParseListenAddr]: "tcp://:9000?proxy-protocol=on"). With
// ListenerOptions.ProxyProtocol a listener reads a PROXY protocol v1 or v2
// header from each connection before the echo (behind HAProxy, an AWS
// NLB), and serves the connection as the client it names. On Linux the TCP
// and TLS listeners Bind makes, once ServeBound serves them, take a
// connection only at its first byte (TCP_DEFER_ACCEPT) when no setting
// needs it sooner, which saves a short-lived connection a wake-up;
// ListenerOptions.DisableDeferAccept takes every connection at its
// handshake.
//
// Data shown in logs is formatted by [Quote], which renders bytes exactly as
// Python's repr(bytes) does, so echoctl's debug transcript reads like the
// seed's and never writes raw control characters to a terminal; [QuoteMax]
// cuts long chunks to Server.LogMaxBytes.
//
// Resources are bounded by Server fields, all off in the zero value:
// MaxConns and MaxConnsPerIP (past them, connections are accepted and
// closed at once), IdleTimeout and WriteTimeout, and the access list Allow
// and Deny. An [Observer] set in Server.Observer is told of listeners,
// connections, bytes, echo latency and why each connection closed
// ([CloseReason]); it is where metrics attach.
//
// A Server can also misbehave on purpose, for testing clients, proxies
// and balancers: [Faults] in Server.Faults delays, paces, slices, cuts
// off, stalls or corrupts the echo of a share of its stream connections,
// on both engines; off in the zero value, at no cost. A reset and a
// lingering close need the connection's SetLinger and CloseWrite: a
// wrapped listener whose connections hide them (netutil.LimitListener's,
// say) closes with a FIN instead, at once.
//
// Two engines move the bytes, chosen for each listener in one place:
//
//	listener                                  Linux         other systems
//	*net.TCPListener (plain TCP)              event loops   goroutines
//	*net.UnixListener, unix:// addresses      event loops   goroutines
//	TLS (tls:// addresses)                    goroutines    goroutines
//	any other net.Listener (a wrapper)        goroutines    goroutines
//
// Event loops, one per CPU, wait on epoll for all their connections: no
// goroutine per connection, and an idle connection costs a few hundred
// bytes whatever IdleTimeout, WriteTimeout and the log level are (the
// loops sweep for timed-out connections, and read BufferSize bytes at a
// time when data is logged). The goroutine engine serves each connection
// with a goroutine of its own. The bytes on the wire, the logs, the limits
// and the shutdown are the same either way, but for what a wrapped
// listener's connections hide (above) and for what Shutdown's deadline
// finds unread in a TLS socket: encrypted records, whose plaintext's
// length it cannot tell, so it echoes only what it has read
// (Server.Shutdown). docs/architecture.md in the repository walks through
// both.
package echo

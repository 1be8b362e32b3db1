// Package echo implements the TCP echo server and client behind echoctl.
//
// It is the Go counterpart of the asyncio streams echo server and client in
// PyMOTW-3: the [Server] reads up to BufferSize bytes from each connection,
// writes them back, waits for the write to complete before it reads again,
// and closes the connection when the peer half-closes its side. The [Client]
// sends messages, half-closes, and reads the echo until the server closes,
// verifying every byte against what it sent.
//
// The package is shaped like net/http: a Server whose zero value serves with
// the seed's defaults (localhost:10000, 128-byte reads), Serve(net.Listener)
// at its centre, ListenAndServe as a thin wrapper, and Shutdown(ctx) for a
// graceful stop. Loggers are passed in as fields; nil means no logging.
//
// Data shown in logs is formatted by [Quote], which renders bytes exactly as
// Python's repr(bytes) does, so echoctl's debug transcript reads like the
// seed's and never writes raw control characters to a terminal.
package echo

package main

// idleProse closes the page: what echoctl's idle connection costs, and what
// it would take to get to gnet's.
const idleProse = `## What an idle connection costs, and what it would take to reach gnet's ~532 bytes

An idle connection costs a server what it keeps for it between two reads.
A server with a goroutine per connection (the plain Go server) keeps:

- the goroutine's stack: 2 KiB at the least, more once it has grown;
- the goroutine itself (the runtime's ` + "`g`" + `, about 400 bytes), the
  ` + "`net.TCPConn`" + `/` + "`netFD`" + ` with its two addresses, and its poller
  descriptor (` + "`pollDesc`" + `), a few hundred bytes;
- its own per-connection state and any buffer it holds while waiting.

echoctl does not keep the first two for an idle connection. On Linux a
connection that has read nothing for a quarter to half a second is
**parked**: its socket goes into an epoll instance of the server's own, its
goroutine ends, and a new goroutine takes it up where it stopped when the
socket becomes readable (data, end of stream or an error; see
` + "`pkg/echo/park_linux.go`" + `). When the parked connections have
grown by a thousand or more, the server hands the freed stacks back to the
operating system (at most once a second). Its fast path holds no buffer
while waiting either: it takes a pooled one only to read. What is left per
idle connection is heap: echoctl's ` + "`conn`" + ` (logger name and peer
strings, limits, timeouts, parking state, the shutdown map entry), the
` + "`netFD`" + ` and its addresses, and the runtime's ` + "`pollDesc`" + `, plus
the garbage collector's headroom over live heap. The kernel's socket
buffers do not count: they are not in the process's resident memory.

gnet gets to ~0.5 KB because it never makes a ` + "`net.Conn`" + ` at all: one
event loop per CPU accepts on a raw listening socket, waits on epoll for
every socket, reads into one buffer shared by the loop, and keeps per
connection only a small struct (file descriptor, addresses, an inbound and
an outbound buffer that stay empty while idle). Getting echoctl there means
a second serving engine for plain TCP beside the goroutine one:

1. An epoll event loop per CPU owning raw accepted sockets (never in the
   runtime's poller, so no ` + "`netFD`" + ` or ` + "`pollDesc`" + `), with one
   shared read buffer per loop.
2. Per connection only its fd, its peer (its logger name made when a line
   is logged) and a write-back buffer used only when the socket's send
   buffer is full, with EPOLLOUT to resume and reads paused meanwhile (the
   seed's read-then-write-then-read order and its back-pressure).
3. The logging, limits, timeouts (a timer wheel per loop), shutdown and
   observer hooks reimplemented on the loop, since none of them may block.

The same engine is what it would take to bring the server CPU per message
at one connection, and per connection cycle, to gnet's: a goroutine per
connection pays the runtime scheduler's park and wake-up and an extra read
that finds the socket empty for every message, and for every connection
the goroutine's creation, the poller registration and the runtime's
keep-alive and address system calls. ` + "`Serve(net.Listener)`" + ` would keep
the goroutine engine for TLS, wrapped listeners and the debug transcript's
128-byte reads.
`

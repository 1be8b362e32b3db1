package main

// idleProse closes the page: what echoctl's idle connection costs, and what
// it would take to get to gnet's.
const idleProse = `## What it would take to hold an idle connection in gnet's ~532 bytes

An idle connection costs a server what it keeps for it between two reads.
For a server with a goroutine per connection (echoctl, the plain Go server)
that is at least:

- the goroutine's stack: 2 KiB at the least, and often 4-8 KiB once it has
  gone through the read, write and logging paths, since Go grows stacks by
  doubling and shrinks them only at garbage collection, by half;
- the goroutine itself (the runtime's ` + "`g`" + `, about 400 bytes), the
  ` + "`net.TCPConn`" + `/` + "`netFD`" + ` and its poller descriptor
  (` + "`pollDesc`" + `, with its two timers), a few hundred bytes;
- the server's own per-connection state: echoctl's ` + "`conn`" + ` (logger name and
  peer strings, limits, timeouts, the shutdown map entry), and any buffer it
  holds while waiting. echoctl's fast path holds no buffer while idle: it
  waits for readability with none and takes a pooled one only to read.

The kernel's socket buffers do not count here: they are not in the
process's resident memory.

That puts a goroutine-per-connection server at roughly 3 KB per idle
connection at best, which is what the issue asks of echoctl (≤ 3 KB) and
about what the plain Go server shows. gnet gets to ~0.5 KB because it has
**no goroutine per connection**: one event loop per CPU waits on epoll for
every socket, reads into one buffer shared by the loop, and keeps per
connection only a small struct (file descriptor, addresses, an inbound and
an outbound buffer that stay empty while the connection is idle) in a map.

Getting echoctl there means serving plain TCP the same way:

1. An epoll (or io_uring) event loop per CPU, owning the accepted sockets
   (taken out of ` + "`net.Listener`" + `'s netpoller with ` + "`SyscallConn`" + ` or
   accepted directly on a raw listening socket), with one shared read buffer
   per loop.
2. Per connection, only its fd, its peer for logging, and a write-back
   buffer used only when the socket's send buffer is full (with
   EPOLLOUT to resume, and reads paused meanwhile, which keeps the seed's
   read-then-write-then-read order and its back-pressure).
3. The logging, limits, timeouts (a timer wheel per loop rather than a
   timer per connection), shutdown and observer hooks reimplemented on the
   loop, since none of them can block.

The cost is a second serving engine beside the goroutine one: ` + "`Serve(net.Listener)`" + `
must keep working for TLS, Unix sockets and wrapped listeners, which need a
goroutine per connection, and the debug transcript's 128-byte reads are
easiest to keep there. A middle way that keeps one engine is to make the
goroutine's idle footprint as small as Go allows: keep the wait for
readability on a minimal stack (no deep call chain or large frames before
the first read, so that the stack stays at 2 KiB), build logger names
lazily, and avoid per-connection maps and timers while idle; that can bring
the goroutine design to about 2.5-3 KB, not to 0.5 KB.
`

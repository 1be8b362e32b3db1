package main

// controlProse explains the control column of the targets.
const controlProse = `The control, "echoctl (again)", is the same echoctl binary served a
second time in every round, after gnet, and measured the same way. The
column "echoctl against itself" is echoctl's figure against the control's:
two runs of one server, which differ only by the machine's noise. Where a
target's ratio is no further from the target than that (on a log scale),
the met column says "within noise": this run cannot tell that target's
outcome from chance.

`

// idleProse closes the page: how echoctl serves connections, what an idle
// one costs, and what it would take to get to gnet's.
const idleProse = `## How echoctl serves, and what it would take to hold an idle connection in gnet's ~532 bytes

At its defaults (no data logged, no idle or write timeout) echoctl serves
plain TCP on Linux the way gnet does: one event loop per CPU waits on epoll
for all of its sockets, reads into one buffer of its own and writes the
bytes back at once, with no goroutine per connection
(` + "`pkg/echo/loop_linux.go`" + `). The loops accept too, raw sockets
(` + "`accept4`" + ` on a duplicate of the listening socket in their epoll sets,
with EPOLLEXCLUSIVE), which never enter the Go runtime's poller: no
` + "`netFD`" + `, no ` + "`pollDesc`" + `, no wake-up of a goroutine per message or
per connection, and no system call per connection for ` + "`TCP_NODELAY`" + ` and
keep-alive, which the accepted sockets inherit from the listening one. One
difference from gnet is for speed: the loops read and write their
non-blocking sockets with raw system calls, which the Go scheduler does not
treat as possibly blocking, so a long copy (64 KiB when streaming) does not
make the runtime's monitor hand the loop's CPU to another thread
([profile.md](profile.md#streaming-the-runtimes-monitor)). Two
differences from gnet remain on purpose: a connection whose peer does not
read is not read from until its echo is written (the seed's ` + "`drain()`" + `;
gnet buffers without bound), and every connection logs ` + "`connection accepted`" + `
and ` + "`closing`" + ` at the default level: two writes to standard error per
connection, which gnet does not make.

An idle connection then costs echoctl, in Go's heap, one 192-byte object
(the policy every connection carries, its limits, timeouts and observer,
and the loop's state: the fd, the write left pending, the shutdown state,
times on the loop's clock), its logger name and peer strings, an entry in
the Server's map (for Shutdown and the limits) and a slot in its loop's
table of descriptors;
with the garbage collector's headroom, the figure in the idle table. The
kernel's socket buffers do not count: they are not in the process's
resident memory. A goroutine-per-connection server (the plain Go server)
pays besides at least a 2 KiB stack, the runtime's ` + "`g`" + ` and the
` + "`netFD`" + `/` + "`pollDesc`" + ` pair. The loops serve plain TCP and Unix
sockets whatever the flags (` + "`--idle-timeout`" + `, ` + "`--write-timeout`" + ` and
` + "`-v`" + ` change what a loop does, not who serves the connection); echoctl's
goroutine engine serves only TLS, listeners it did not make and other
systems ([architecture.md](architecture.md)).

To come down further, echoctl would make the rest of the connection's
state on demand: the logger name and peer strings formatted from the
address when a line is logged, and a connection found from its fd alone,
dropping the Server's map entry for loop connections.
`

// ceilingProse introduces the table of what echoctl could reach against
// the asyncio server on the machine of the run.
const ceilingProse = `## What "4× the asyncio server" would take on this machine

A server on one CPU can echo at most one second divided by its CPU time per
message, and most of echoctl's is the kernel's: system time for the TCP
work of every read and write and of the loopback delivery to the peer, which
any server pays. The asyncio server (quiet) keeps its CPU busy at pingpong
128 B (its CPU column), so its throughput is its own limit, while echoctl's
is set mostly by the load generator (its load CPU column). The ceiling
column is the most echoctl could reach against the asyncio server's
throughput if its own code cost nothing and the load generator had no limit:
one second divided by the kernel's part of its CPU time per message. Where
that ceiling is under 4×, no server could reach 4× here, however it was
written; the issue's machine, whose system calls cost less, put the plain Go
server at 3.8-4.3×. A profile ([profile.md](profile.md)) finds three
quarters of echoctl's time inside the write and read calls themselves, the
TCP work that batching system calls (io_uring, say) would not remove.

`

// connratePartsProse introduces the table of the connrate cycle written in
// three parts and in one.
const connratePartsProse = `## The connrate cycle: what the client's writes cost the server

The seed client writes its message in three parts, one write each, before
it half-closes. A server that reads as soon as the first part arrives
echoes it at once, and the next parts as they come: up to three segments,
each a send and an acknowledgement over loopback, which the sender's CPU
pays for both ends. gnet accepts on one event loop and hands the
connection to another through a queue and an eventfd, so its first read
comes later, when the three parts and the end of the stream are usually
all there: one read, one write. echoctl adds no delay: at its defaults its
listener takes a connection only when its first byte has come
(` + "`TCP_DEFER_ACCEPT`" + `, docs/usage.md "When serve takes a connection"),
so the loop that accepts it wakes once, after the client's first writes,
instead of once at the handshake and again for each part
(` + "`--defer-accept off`" + ` would read the parts one by one). The
second row sends the same 46 bytes in one write (` + "`--part`" + `), which takes
the parts' timing out of the comparison: what is left is what each server
spends on a connection.

`

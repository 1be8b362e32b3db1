// Package bench is a load generator for echo servers, echoctl's or
// anyone's, over TCP, TLS, Unix sockets and UDP. It verifies every byte
// echoed back and reports throughput,
// latency percentiles from an HDR histogram, errors by kind and, given the
// server's process id on Linux, the server's CPU time per message and its
// memory per idle connection. The Result also cuts the measured window
// into seconds, each with its own throughput, errors and latency
// percentiles (Config.EachSecond has them as they end), and keeps the
// whole latency distribution, which [Result.WriteHgrm] writes in
// HdrHistogram's format.
//
// Four modes cover what users ask of an echo server:
//
//   - [ModePingPong]: each connection writes a message of Size bytes and
//     reads it back, keeping Pipeline messages outstanding.
//   - [ModeStream]: each connection writes Chunk bytes at a time without
//     waiting while it reads the echo back and verifies it.
//   - [ModeConnRate]: the seed client's cycle, repeated: connect, write the
//     parts, half-close, read until end of stream, close.
//   - [ModeIdle]: open Conns connections, check each echoes one byte, and
//     hold them, to measure what an idle connection costs the server.
//
// Every mode runs over TCP, TLS (counting the handshakes, and with
// Config.TLSResume the sessions resumed) and Unix sockets, each connection
// made by one dial through echo.Client. Over UDP a run sends datagrams
// instead, open loop at Config.Rate, each with the run's identifier, a
// sequence number and its send time (UDPHeaderSize), and reports loss,
// reordering and duplicates apart, as RFC 4737 counts them, with RFC
// 3550's interarrival jitter (UDPStats).
//
// [Run] always returns by Warmup+Duration plus a small grace, even when the
// server stalls: every operation has a deadline, capped at the end of the
// run, and the run's end closes what is still open.
package bench

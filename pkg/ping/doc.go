// Package ping probes an echo server the way ping(8) probes a host and
// tcping a port: every Interval, one probe, and at the end a summary of
// the round trips (min/avg/max/mdev as ping prints them, and p50/p99).
//
// A probe over TCP, TLS or a Unix socket connects (a new connection for
// each probe, or one for all with Reuse), writes Size bytes and reads them
// back, verifying every byte; its Connect time is the connection's
// (TCP's, and TLS's handshake with it) and its RTT the echo's. Over UDP a
// probe is one datagram carrying a sequence number and this run's
// identifier: an answer with another sequence number (a late echo of an
// earlier probe) or another identifier is not taken for this probe's.
//
// Probes go one after the other: the next starts Interval after the last
// started, or at once when that one took longer. Each probe is bounded by
// Timeout, and Run returns when Count probes are done or its context ends.
package ping

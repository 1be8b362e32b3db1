// Package reliability holds the tests that prove echoctl holds up under
// load, faults and hostile clients (issue 6), run against the built binary
// as a user runs it: graceful drain of 200 streaming connections on
// SIGTERM, a client that never reads, the idle timeout, the connection
// limits and the access list checked through /metrics, and recovery from
// file descriptor exhaustion under `ulimit -n 64`. TestSoak, run by
// `make soak` and skipped otherwise, churns connections for a minute with
// 2,000 more held open and checks that memory, goroutines and descriptors
// come back to where they started; docs/reliability.md has its figures.
//
// Every test talks to loopback addresses only and bounds its time. They
// run on Linux, where they read /proc and loopback has all of 127.0.0.0/8.
package reliability

// Package bench is the home of `make bench`: the echo servers that echoctl
// is measured against and the program that runs them side by side. It is
// a Go module of its own, so that echoctl's go.mod carries only what the
// echoctl binary needs.
//
//   - cmd/goecho: a plain Go server, a goroutine per connection with a
//     128-byte read/write loop, as most people would write it.
//   - cmd/gnetecho: an echo server on github.com/panjf2000/gnet/v2, an
//     event loop with no goroutine per connection.
//   - cmd/spliceecho: not in `make bench`: the splice(2) experiment of
//     docs/profile.md, echoing through a pipe, io.Copy or read/write.
//   - cmd/benchrun: starts each server in turn, pinned to one CPU, runs
//     `echoctl bench` against it pinned to the other, and writes
//     docs/benchmarks.md, and beside it docs/benchmarks.html, the runs'
//     charts drawn by `echoctl bench report`.
package bench

package echo_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestEchoAnyChunking is a property: any message, split into any chunks
// (each sent with its own write, empty ones included), comes back
// byte-exact, from every kind of server: the fast path, the logged path
// with small and odd read sizes, connections without a file descriptor,
// and a server with every limit, timeout and an observer switched on.
func TestEchoAnyChunking(t *testing.T) {
	type target struct {
		name    string
		addr    string
		maxSize int // the largest message worth sending it
	}
	var targets []target
	for _, v := range variants {
		addr, _ := startVariant(t, v, nil, func(*echo.Server) {})
		targets = append(targets, target{v.name, addr, min(v.bulk, 256<<10)})
	}
	addr, _ := startVariant(t, variants[0], nil, func(s *echo.Server) {
		s.MaxConns = 1000
		s.MaxConnsPerIP = 1000
		s.IdleTimeout = ioTimeout
		s.WriteTimeout = ioTimeout
		s.Allow = prefixes("127.0.0.0/8")
		s.Deny = prefixes("192.0.2.0/24")
		s.Observer = nopObserver{}
	})
	targets = append(targets, target{"limits and observer", addr, 256 << 10})

	rapid.Check(t, func(rt *rapid.T) {
		tg := rapid.SampledFrom(targets).Draw(rt, "server")
		var msg []byte
		if rapid.Bool().Draw(rt, "small") {
			// Small messages with every byte value drawn by rapid, so
			// that failures shrink to the bytes that matter.
			msg = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(rt, "message")
		} else {
			n := rapid.IntRange(0, tg.maxSize).Draw(rt, "size")
			msg = randomBytes(rapid.Uint64().Draw(rt, "seed"), n)
		}
		cuts := rapid.SliceOfN(rapid.IntRange(0, len(msg)), 0, 20).Draw(rt, "cuts")
		slices.Sort(cuts)
		var chunks [][]byte
		prev := 0
		for _, c := range cuts {
			chunks = append(chunks, msg[prev:c])
			prev = c
		}
		chunks = append(chunks, msg[prev:])

		cl := &echo.Client{Addr: tg.addr, Timeout: ioTimeout}
		var got bytes.Buffer
		res, err := cl.Send(context.Background(), chunks, &got)
		if err != nil {
			rt.Fatalf("%s: %d bytes in %d chunks: %v", tg.name, len(msg), len(chunks), err)
		}
		if !bytes.Equal(got.Bytes(), msg) {
			rt.Fatalf("%s: %d bytes in %d chunks: echo differs at byte %d", tg.name, len(msg), len(chunks), firstDiff(got.Bytes(), msg))
		}
		if res.Sent != int64(len(msg)) || res.Received != int64(len(msg)) {
			rt.Fatalf("%s: Send = %+v, want %d bytes each way", tg.name, res, len(msg))
		}
	})
}

package echo_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/echoctl/echoctl/pkg/echo/echotest"
)

// benchmarkEcho measures one connection's ping-pong against an in-process
// server: write size bytes, read their echo, repeat.
func benchmarkEcho(b *testing.B, size int) {
	ts := echotest.NewServer(b, nil)
	c, err := (&net.Dialer{Timeout: ioTimeout}).Dial("tcp", ts.Addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	msg := randomBytes(uint64(size), size)
	got := make([]byte, size)
	c.SetDeadline(time.Now().Add(time.Minute))

	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !bytes.Equal(got, msg) {
		b.Fatal("echo differs from what was sent")
	}
	c.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		b.Fatalf("after the half-close: %q, %v; want EOF", rest, err)
	}
}

func BenchmarkEcho128(b *testing.B) { benchmarkEcho(b, 128) }

func BenchmarkEcho16K(b *testing.B) { benchmarkEcho(b, 16<<10) }

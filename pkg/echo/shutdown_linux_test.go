package echo_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoctl/echoctl/pkg/echo"
)

// TestShutdownEchoesWhatWasSentBeforeTheDeadline: a peer that sends but
// does not read has stalled its echo, so what it sent waits unread in the
// server's receive queue. When Shutdown's context ends, the server still
// writes back everything that had reached it (not only what it had read),
// then ends the stream: the peer gets back every byte the server received
// before the deadline, byte for byte.
func TestShutdownEchoesWhatWasSentBeforeTheDeadline(t *testing.T) {
	for _, v := range variants {
		if v.opaque || v.small() {
			continue // a wrapped connection's queue cannot be read; the logged ones are too slow for megabytes
		}
		t.Run(v.name, func(t *testing.T) {
			// Small socket buffers on both sides (the server's sockets
			// inherit the listener's) keep what the stalled echo holds,
			// and so what must come back within the server's one-second
			// lingering close, to a few hundred KiB even on a loaded
			// machine.
			small := func(_, _ string, rc syscall.RawConn) error {
				var serr error
				rc.Control(func(fd uintptr) {
					for _, opt := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
						if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 64<<10); err != nil {
							serr = err
						}
					}
				})
				return serr
			}
			ln, err := (&net.ListenConfig{Control: small}).Listen(context.Background(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := v.server(nil)
			serve(t, srv, ln)
			nc, err := (&net.Dialer{Timeout: ioTimeout, Control: small}).Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c := nc.(*net.TCPConn)
			t.Cleanup(func() { c.Close() })
			data := randomBytes(11, 32<<20)
			var written atomic.Int64
			wdone := make(chan struct{})
			go func() {
				defer close(wdone)
				for off := 0; off < len(data); {
					n, err := c.Write(data[off:min(off+64<<10, len(data))])
					off += n
					written.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
			rc, err := c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			sendQueue := func() int {
				var outq int
				var qerr error
				if err := rc.Control(func(fd uintptr) { outq, qerr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
					t.Fatal(err)
				}
				if qerr != nil {
					t.Fatal(qerr)
				}
				return outq
			}
			// Wait until the echo is stuck: the server, its write back
			// blocked, no longer reads, and what this side sends waits
			// in the server's receive queue, then in this side's send
			// queue. Then stop the writer, so that written counts every
			// byte it handed to the kernel.
			waitPeerStalled(t, c)
			c.SetWriteDeadline(time.Now())
			<-wdone
			// What reached the server: written less what still waits
			// in this side's send queue. Nothing moves while the echo is
			// stuck, so this is what has reached it at the deadline;
			// what follows, once the server reads again, it may discard.
			reached := written.Load() - int64(sendQueue())
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(ctx) }()
			// Read only once the server has stopped reading: reading
			// before would let it echo its queue the ordinary way.
			waitUntil(t, "the server to stop reading at the deadline", func() bool { return echo.StoppedConns(srv) == 1 })

			c.SetReadDeadline(time.Now().Add(ioTimeout))
			buf := make([]byte, len(data))
			n, err := io.ReadFull(c, buf)
			if err != io.ErrUnexpectedEOF && err != io.EOF && !isReset(err) {
				t.Fatalf("reading the echo: %v after %d bytes, want end of stream", err, n)
			}
			got := buf[:n]
			if !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("the echo (%d bytes) differs from what was sent at byte %d", len(got), firstDiff(got, data))
			}
			t.Logf("%d bytes had reached the server, %d came back", reached, len(got))
			if int64(len(got)) < reached {
				t.Errorf("echo %d bytes; %d had reached the server before the deadline", len(got), reached)
			}
			if err := <-shut; err == nil {
				t.Errorf("Shutdown = nil, want the context's error")
			}
		})
	}
}

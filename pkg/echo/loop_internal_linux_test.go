package echo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/echoctl/echoctl/pkg/echo/internal/netpoll"
	"github.com/rs/zerolog"
)

// TestLoopSocketOptions: the sockets the event loops accept get what net
// gives accepted TCP connections, through the listening socket they
// inherit it from: no Nagle delay, and keep-alive as the ListenConfig says.
func TestLoopSocketOptions(t *testing.T) {
	tests := []struct {
		name string
		lc   net.ListenConfig
		// want: SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT (the
		// last three only when keep-alive is on).
		want [4]int
	}{
		{"defaults", net.ListenConfig{}, [4]int{1, 15, 15, 9}},
		{"KeepAlive period", net.ListenConfig{KeepAlive: 30 * time.Second}, [4]int{1, 30, 15, 9}},
		{"KeepAliveConfig", net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: 5 * time.Second, Count: 3}}, [4]int{1, 60, 5, 3}},
		{"off", net.ListenConfig{KeepAlive: -1}, [4]int{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ll, err := newLoopListener(ln.(*net.TCPListener), tt.lc)
			if err != nil {
				t.Fatal(err)
			}
			defer ll.Close() // and its duplicate, which Serve never claimed
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The loops accept non-blocking; so does this, until the
			// connection is there.
			fd, ap := -1, netip.AddrPort{}
			for deadline := time.Now().Add(5 * time.Second); fd < 0; {
				fd, ap, err = netpoll.Accept4(ll.fd)
				if err == syscall.EAGAIN && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			defer syscall.Close(fd)
			get := func(level, name int) int {
				v, err := syscall.GetsockoptInt(fd, level, name)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			if got := get(syscall.IPPROTO_TCP, syscall.TCP_NODELAY); got != 1 {
				t.Errorf("TCP_NODELAY = %d, want 1", got)
			}
			got := [4]int{get(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)}
			if got[0] == 1 {
				got[1] = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
				got[2] = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
				got[3] = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
			}
			if got != tt.want {
				t.Errorf("keep-alive, idle, interval, count = %v, want %v", got, tt.want)
			}
			if ra := net.TCPAddrFromAddrPort(ap).String(); ra != c.LocalAddr().String() {
				t.Errorf("RemoteAddr = %s, want the client's %s", ra, c.LocalAddr())
			}
		})
	}
}

// TestLoopPeerNamesAsNet checks that a loop connection, whose peer is
// kept unboxed, gets the logger name, peer, IP and observer address that
// the same peer as a *net.TCPAddr gets on the goroutine engine.
func TestLoopPeerNamesAsNet(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1:51234",
		"[::1]:64624",
		"[::ffff:127.0.0.1]:40000",
		"[fe80::1%lo]:7",
		"[2001:db8::5]:65535",
	} {
		t.Run(s, func(t *testing.T) {
			ap := netip.MustParseAddrPort(s)
			ta := net.TCPAddrFromAddrPort(ap)
			var got, want conn
			srv := &Server{}
			srv.nameConn(&got, &net.TCPAddr{}, peerAddr{ap: ap})
			srv.nameConn(&want, &net.TCPAddr{}, peerAddr{addr: ta})
			if got.name != want.name || got.name != LoggerName(ta) {
				t.Errorf("name %q; want %q", got.name, want.name)
			}
			if got.peer != want.peer || got.peer != ta.String() {
				t.Errorf("peer %q; want %q", got.peer, want.peer)
			}
			gotIP, gotOK := peerAddr{ap: ap}.ip()
			wantIP, wantOK := peerAddr{addr: ta}.ip()
			if gotIP != wantIP || gotOK != wantOK {
				t.Errorf("IP %v %v; want %v %v", gotIP, gotOK, wantIP, wantOK)
			}
			if ra := (peerAddr{ap: ap}).netAddr().String(); ra != ta.String() {
				t.Errorf("observer's peer %q; want %q", ra, ta.String())
			}
		})
	}
}

// TestIdleConnectionSizes keeps what an idle loop connection costs from
// growing unnoticed: docs/reliability.md gives these sizes (64-bit).
func TestIdleConnectionSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	for _, tt := range []struct {
		name     string
		got, max uintptr
	}{
		{"conn", unsafe.Sizeof(conn{}), 128},
		{"loopConn", unsafe.Sizeof(loopConn{}), 192}, // with its conn (a 192-byte size class)
	} {
		if tt.got > tt.max {
			t.Errorf("%s is %d bytes, more than %d", tt.name, tt.got, tt.max)
		}
	}
}

// lockedBuffer is a bytes.Buffer that a logger and a test may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestLoopEpollFailure: an event loop whose epoll_wait fails logs why,
// closes its connections and ends Serve with the error, and Shutdown
// returns (it used to wait for the loop's connections for ever).
func TestLoopEpollFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	srv := &Server{Logger: zerolog.New(&logs).Level(zerolog.InfoLevel)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}

	var owner *loop
	srv.loops.mu.Lock()
	for _, l := range srv.loops.all {
		l.mu.Lock()
		if l.nconns > 0 {
			owner = l
		}
		l.mu.Unlock()
	}
	srv.loops.mu.Unlock()
	if owner == nil {
		t.Fatal("no event loop serves the connection")
	}
	// Break the loop's epoll descriptor: its number now names /dev/null,
	// on which epoll_wait fails (EINVAL). The wait in progress holds the
	// real epoll instance still; waking it makes the loop wait again.
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if err := syscall.Dup3(int(null.Fd()), owner.poll.FD(), syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	owner.wakeUp()

	if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on the failed loop's connection = %d, %v; want it closed", n, err)
	}
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "event loop: epoll_wait: invalid argument") {
			t.Errorf("Serve = %v, want the epoll_wait error", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve still running after its loop failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after a loop failed")
	}
	if want := `"event loop: epoll_wait: invalid argument: closing its 1 connections"`; !strings.Contains(logs.String(), want) {
		t.Errorf("no log line %s:\n%s", want, logs.String())
	}
}

// TestLoopTranscriptOfAPendingWrite: a loop whose write back a full
// socket takes only in part keeps the rest pending, and logs the chunk as
// "sent", whole, only once all of it is written, after its "received".
func TestLoopTranscriptOfAPendingWrite(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer peer.Close()
	if err := syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	srv := &Server{BufferSize: 256 << 10, LogMaxBytes: 8, Logger: zerolog.New(&logs).Level(zerolog.DebugLevel)}
	l, err := newLoop(srv, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.poll.Close()
	lc := &loopConn{fd: int32(fds[0])}
	lc.srv, lc.io, lc.name, lc.peer = srv, lc, "echo_unix_1", "/test"
	if err := l.add(lc); err != nil {
		t.Fatal(err)
	}
	srv.trackConn(&lc.conn, true)

	msg := bytes.Repeat([]byte("pending\x00\xff"), 64<<10/8)
	if _, err := peer.Write(msg[:64<<10]); err != nil { // fits the peer's send buffer
		t.Fatal(err)
	}
	l.echo(lc, false) // reads the 64 KiB, writes back what the 4 KiB send buffer takes
	if lc.pending == nil {
		t.Fatalf("the write back of 64 KiB into a 4 KiB send buffer is not pending")
	}
	if strings.Contains(logs.String(), `"sent `) {
		t.Fatalf("logged sent before the chunk was written:\n%s", logs.String())
	}
	got := make([]byte, 0, 64<<10)
	buf := make([]byte, 64<<10)
	const bound = 5 * time.Second
	deadline := time.Now().Add(bound)
	for lc.pending != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the pending write back is not done after %v (%d bytes echoed)", bound, len(got))
		}
		n, err := syscall.Read(fds[1], buf)
		if n > 0 {
			got = append(got, buf[:n]...)
		}
		if err != nil && err != syscall.EAGAIN {
			t.Fatal(err)
		}
		l.flush(lc)
	}
	for len(got) < 64<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes echoed after %v, want %d", len(got), bound, 64<<10)
		}
		n, err := syscall.Read(fds[1], buf)
		if err != nil && err != syscall.EAGAIN {
			t.Fatal(err)
		}
		got = append(got, buf[:max(n, 0)]...)
	}
	if !bytes.Equal(got, msg[:64<<10]) {
		t.Fatalf("echoed %d bytes that differ from the %d sent", len(got), 64<<10)
	}
	var lines []string
	for l := range strings.Lines(logs.String()) {
		lines = append(lines, l)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], `"bytes":65536,"message":"received b'`) ||
		!strings.Contains(lines[1], `"bytes":65536,"message":"sent b'`) {
		t.Errorf("want one received and one sent line of 65536 bytes, got:\n%s", logs.String())
	}
	l.close(lc, CloseEOF, nil)
}

// TestRawAccept4Peer checks that the loops' accept4 gives each family's
// peer as net names it: the client's own address and port over TCP, none
// on a Unix socket.
func TestRawAccept4Peer(t *testing.T) {
	for _, tt := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
		{"unix", ""},
	} {
		t.Run(tt.network, func(t *testing.T) {
			addr := tt.addr
			if tt.network == "unix" {
				addr = t.TempDir() + "/s"
			}
			ln, err := net.Listen(tt.network, addr)
			if err != nil && tt.network == "tcp6" {
				t.Skipf("no IPv6 loopback: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			c, err := net.Dial(tt.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			// The client's connect has completed, so the connection is
			// queued on the listener; a blocking listener socket waits
			// for it all the same.
			f, err := ln.(interface{ File() (*os.File, error) }).File()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := syscall.SetNonblock(int(f.Fd()), false); err != nil {
				t.Fatal(err)
			}
			fd, ap, err := netpoll.Accept4(int(f.Fd()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { netpoll.Close(fd) })
			want := netip.AddrPort{}
			if tt.network != "unix" {
				want = c.LocalAddr().(*net.TCPAddr).AddrPort()
			}
			if ap != want {
				t.Errorf("peer %v, want %v", ap, want)
			}
		})
	}
}

// TestLoopEndOfStreamWithTheRead: a read after the peer ended its stream
// (EPOLLRDHUP) that takes less than it could ends the connection at once,
// after its echo; one that fills the read buffer, or whose echo the
// socket did not take whole, leaves it open for what is left.
func TestLoopEndOfStreamWithTheRead(t *testing.T) {
	tests := []struct {
		name   string
		sent   int  // bytes the peer sends before it half-closes
		sndbuf int  // the loop's send buffer (0: the default)
		open   bool // open after one echo
	}{
		{name: "short read", sent: 5},
		{name: "a full read buffer", sent: fastBufferSize + 10, open: true},
		{name: "a pending write back", sent: 32 << 10, sndbuf: 4096, open: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Close(fds[1]) })
			if tt.sndbuf > 0 {
				if err := syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, tt.sndbuf); err != nil {
					t.Fatal(err)
				}
			}
			var logs lockedBuffer
			srv := &Server{Logger: zerolog.New(&logs)}
			l, err := newLoop(srv, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(l.poll.Close)
			lc := &loopConn{fd: int32(fds[0])}
			lc.srv, lc.io, lc.name, lc.peer = srv, lc, "echo_unix_1", "/test"
			if err := l.add(lc); err != nil {
				t.Fatal(err)
			}
			srv.trackConn(&lc.conn, true)
			t.Cleanup(func() { l.close(lc, CloseEOF, nil) })

			msg := bytes.Repeat([]byte{'e'}, tt.sent)
			for rest := msg; len(rest) > 0; {
				n, err := syscall.Write(fds[1], rest)
				if err != nil {
					t.Fatalf("peer write: %v", err)
				}
				rest = rest[n:]
			}
			if err := syscall.Shutdown(fds[1], syscall.SHUT_WR); err != nil {
				t.Fatal(err)
			}
			l.echo(lc, true)
			if open := l.connAt(lc.fd) == lc; open != tt.open {
				t.Fatalf("open after one echo = %v, want %v; log:\n%s", open, tt.open, logs.String())
			}
			if tt.open {
				return
			}
			got, err := io.ReadAll(os.NewFile(uintptr(fds[1]), "peer"))
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("peer read %q, %v; want %q then the end of stream", got, err, msg)
			}
			if !strings.Contains(logs.String(), `"reason":"eof"`) {
				t.Errorf("no closing line with reason eof:\n%s", logs.String())
			}
		})
	}
}

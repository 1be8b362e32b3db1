package echo

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"
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
			defer syscall.Close(ll.fd)
			defer ll.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The loops accept non-blocking; so does this, until the
			// connection is there.
			fd, sa := -1, syscall.Sockaddr(nil)
			for deadline := time.Now().Add(5 * time.Second); fd < 0; {
				fd, sa, err = syscall.Accept4(ll.fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
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
			if ra := net.TCPAddrFromAddrPort(sockaddrAddrPort(sa)).String(); ra != c.LocalAddr().String() {
				t.Errorf("RemoteAddr = %s, want the client's %s", ra, c.LocalAddr())
			}
		})
	}
}

// TestFDConnNamesAsNet checks that a loop connection, which keeps its peer
// unboxed, gets the logger name, peer and IP that the same peer as a
// *net.TCPAddr gets on the goroutine path.
func TestFDConnNamesAsNet(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1:51234",
		"[::1]:64624",
		"[::ffff:127.0.0.1]:40000",
		"[fe80::1%lo]:7",
		"[2001:db8::5]:65535",
	} {
		t.Run(s, func(t *testing.T) {
			ap := netip.MustParseAddrPort(s)
			got := (&Server{}).newConn(&fdConn{fd: -1, la: &loopAccept{local: &net.TCPAddr{}}, remote: ap})
			ta := net.TCPAddrFromAddrPort(ap)
			if want := LoggerName(ta); got.name != want {
				t.Errorf("name %q; want %q", got.name, want)
			}
			if want := ta.String(); got.peer != want {
				t.Errorf("peer %q; want %q", got.peer, want)
			}
			gotIP, gotOK := addrPortIP(ap)
			wantIP, wantOK := peerIP(ta)
			if gotIP != wantIP || gotOK != wantOK {
				t.Errorf("IP %v %v; want %v %v", gotIP, gotOK, wantIP, wantOK)
			}
			if ra := got.rwc.RemoteAddr().String(); ra != ta.String() {
				t.Errorf("RemoteAddr %q; want %q", ra, ta.String())
			}
		})
	}
}

// TestIdleConnectionSizes keeps what an idle loop connection costs from
// growing unnoticed: docs/benchmarks.md gives these sizes (64-bit).
func TestIdleConnectionSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	for _, tt := range []struct {
		name     string
		got, max uintptr
	}{
		{"conn", unsafe.Sizeof(conn{}), 224},
		{"loopConn", unsafe.Sizeof(loopConn{}), 64},
		{"fdConn", unsafe.Sizeof(fdConn{}), 48},
	} {
		if tt.got > tt.max {
			t.Errorf("%s is %d bytes, more than %d", tt.name, tt.got, tt.max)
		}
	}
}

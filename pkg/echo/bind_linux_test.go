package echo_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/echoctl/echoctl/internal/certtest"
	"github.com/echoctl/echoctl/pkg/echo"
)

// TestBindListensWithTCP: Bind's TCP and TLS listeners are TCP sockets,
// as the seed's are, not the Multipath TCP ones that Go's net makes by
// default since Go 1.24, even from a ListenConfig that asks for MPTCP.
func TestBindListensWithTCP(t *testing.T) {
	probe, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)
	if err != nil {
		t.Skipf("this kernel makes no MPTCP socket (%v): every listener is TCP", err)
	}
	unix.Close(probe)
	leaf := certtest.NewCA(t, "bind test CA").Issue(t, certtest.Options{CommonName: "echo", Hosts: []string{"127.0.0.1"}})
	for _, addr := range []string{"127.0.0.1:0", "tcp://127.0.0.1:0", "tls://127.0.0.1:0"} {
		t.Run(addr, func(t *testing.T) {
			srv := &echo.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}}
			srv.ListenConfig.SetMultipathTCP(true)
			b, err := srv.Bind(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			if len(b.Listeners) != 1 {
				t.Fatalf("Bind opened %d listeners, want 1", len(b.Listeners))
			}
			if got := socketProtocol(t, b.Listeners[0].Addr()); got != unix.IPPROTO_TCP {
				t.Errorf("listener's SO_PROTOCOL = %d, want IPPROTO_TCP (%d)", got, unix.IPPROTO_TCP)
			}
		})
	}
}

// socketProtocol returns the SO_PROTOCOL of this process's listening
// socket bound to addr.
func socketProtocol(t *testing.T, addr net.Addr) int {
	t.Helper()
	return listenerSockopt(t, addr, unix.SOL_SOCKET, unix.SO_PROTOCOL)
}

// listenerSockopt returns the integer socket option level, name of this
// process's listening socket bound to addr (a TLS listener hides its
// socket: it is found by its address among the process's descriptors).
func listenerSockopt(t *testing.T, addr net.Addr, level, name int) int {
	t.Helper()
	want := addr.(*net.TCPAddr).AddrPort()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
			continue
		}
		sa, err := unix.Getsockname(fd)
		in4, ok := sa.(*unix.SockaddrInet4)
		if err != nil || !ok || in4.Port != int(want.Port()) || in4.Addr != want.Addr().As4() {
			continue
		}
		v, err := unix.GetsockoptInt(fd, level, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Fatalf("no listening socket of this process is bound to %v", addr)
	return 0
}

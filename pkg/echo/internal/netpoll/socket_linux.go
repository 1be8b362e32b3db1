package netpoll

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls an event loop makes on its non-blocking sockets,
// made raw. Package unix's Read, Write and EpollWait tell the
// scheduler first that the goroutine may block (entersyscall). When such
// a call runs longer than the runtime's monitor (sysmon) ticks, 20 µs at
// first, as a read or write of 64 KiB does, the monitor hands the loop's
// processor to another thread and keeps waking every 20 µs, and the loop
// takes the slow way back when the call returns. On the development VM
// that was a fifth of the server's CPU when streaming on 16 connections
// (docs/profile.md). A call on a non-blocking socket never blocks, so a
// loop makes it raw, as it would run any other code; it still lets the
// runtime preempt it between calls.

// Read is recv(2) on a non-blocking socket, as a raw system call.
// recvfrom with no address skips read(2)'s file checks (the position lock,
// rw_verify_area, the file permission hook), which a socket does not need.
func Read(fd int, p []byte) (int, error) { return rawIO(unix.SYS_RECVFROM, fd, p, 0) }

// Write is send(2) on a non-blocking socket, as a raw system call, with
// MSG_NOSIGNAL: a peer that has gone is an EPIPE, never a SIGPIPE.
func Write(fd int, p []byte) (int, error) {
	return rawIO(unix.SYS_SENDTO, fd, p, unix.MSG_NOSIGNAL)
}

// rawIO makes the recvfrom or sendto system call trap on fd with p and
// flags and no address, raw.
func rawIO(trap uintptr, fd int, p []byte, flags uintptr) (int, error) {
	r, _, errno := unix.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), flags, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// Retry runs a read or write system call again while it is interrupted.
func Retry(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// Close is close(2), as a raw system call: closing a socket the loops
// own never blocks, as none has a positive SO_LINGER.
func Close(fd int) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// Accept4 is accept4(2) on a non-blocking listening socket, as a raw
// system call, the new socket non-blocking and close-on-exec. It returns
// the peer's address and port (zero for a Unix socket's peer) without
// making the unix.Sockaddr that unix.Accept4 allocates.
func Accept4(fd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	size := uint32(unix.SizeofSockaddrAny)
	r, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)),
		uintptr(unsafe.Pointer(&size)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, netip.AddrPort{}, errno
	}
	return int(r), rawAddrPort(&rsa), nil
}

// rawAddrPort returns the IPv4 or IPv6 address and port in rsa, its zone
// named after its interface; zero for any other family.
func rawAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), networkPort(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				ip = ip.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(ip, networkPort(sa.Port))
	}
	return netip.AddrPort{}
}

// networkPort reads a port as a sockaddr holds it, in network byte order.
func networkPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

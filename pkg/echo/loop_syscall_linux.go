package echo

import (
	"syscall"
	"unsafe"
)

// The event loops' system calls on their non-blocking sockets, made as
// raw system calls. Package syscall's Read, Write and EpollWait tell the
// scheduler first that the goroutine may block (entersyscall). When such
// a call runs longer than the runtime's monitor (sysmon) ticks, 20 µs at
// first, as a read or write of 64 KiB does, the monitor hands the loop's
// processor to another thread and keeps waking every 20 µs, and the loop
// takes the slow way back when the call returns. On the development VM
// that was a fifth of the server's CPU when streaming on 16 connections
// (docs/profile.md). A call on a non-blocking socket never blocks, so a
// loop makes it raw, as it would run any other code; it still lets the
// runtime preempt it between calls.

// epollPoll is epoll_wait with a zero timeout, as a raw system call: it
// never blocks, so it need not tell the scheduler, which a loop under load
// would otherwise do for every batch of events.
func epollPoll(epfd int, events []syscall.EpollEvent) (int, error) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// rawRead is read(2) on a non-blocking descriptor, as a raw system call.
func rawRead(fd int, p []byte) (int, error) { return rawIO(syscall.SYS_READ, fd, p) }

// rawWrite is write(2) on a non-blocking descriptor, as a raw system call.
func rawWrite(fd int, p []byte) (int, error) { return rawIO(syscall.SYS_WRITE, fd, p) }

// rawIO makes the read or write system call trap on fd with p, raw.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	r, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// ioRetry runs a read or write system call again while it is interrupted.
func ioRetry(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != syscall.EINTR {
			return n, err
		}
	}
}

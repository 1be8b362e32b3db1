package netpoll

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// What a descriptor in a Poller is, in the upper half of its event's data
// (EpollEvent.Pad), set when it is added: a loop tells events apart
// without looking the descriptor up.
const (
	KindConn     int32 = iota // a connection's socket
	KindListener              // a listening socket
	KindWake                  // the Poller's eventfd (Wake)
	KindAlarm                 // the Poller's timerfd (AlarmAt)
)

// Poller is an epoll set with two descriptors of its own in it: an eventfd
// that interrupts a Wait (Wake) and a timerfd that ends one at a time
// (AlarmAt). The alarm is why Wait never needs a timeout: a timeout arms
// a kernel timer on every wait that sleeps, and disarms it on waking; on
// a virtual machine, where programming the timer leaves the guest, that
// cost a PROXY listener, whose header bound is such a timer, 2 µs a
// connection. The alarm is set again only when a time earlier than the
// one it is set to comes; one that goes off for a time no longer needed
// wakes the loop once for nothing.
//
// Only Wake may be called from another goroutine than the loop's (and not
// after Close).
type Poller struct {
	fd, wake, alarm int
	alarmSet        int64 // the clock time the alarm goes off at; 0: not set
}

// New makes a Poller: all three descriptors, or none and the error.
func New() (*Poller, error) {
	p := &Poller{fd: -1, wake: -1, alarm: -1}
	var err error
	if p.fd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if p.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		p.Close()
		return nil, os.NewSyscallError("eventfd2", err)
	}
	if p.alarm, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		p.Close()
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	for _, r := range [...]struct {
		fd   int
		kind int32
	}{{p.wake, KindWake}, {p.alarm, KindAlarm}} {
		if err := p.Add(r.fd, unix.EPOLLIN, r.kind); err != nil {
			p.Close()
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	return p, nil
}

// FD returns the epoll descriptor (for a test that breaks it).
func (p *Poller) FD() int { return p.fd }

// Add puts fd in the set, waiting for events, as a descriptor of kind.
// Its error is the errno, for the caller to name.
func (p *Poller) Add(fd int, events uint32, kind int32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: kind}
	return unix.EpollCtl(p.fd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// Mod changes the events the set waits for on fd, of kind.
func (p *Poller) Mod(fd int, events uint32, kind int32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: kind}
	return unix.EpollCtl(p.fd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// Del takes fd out of the set.
func (p *Poller) Del(fd int) error { return unix.EpollCtl(p.fd, unix.EPOLL_CTL_DEL, fd, nil) }

// Wait is epoll_wait: it waits up to msec milliseconds (-1: until an
// event, the alarm's among them) and fills events.
func (p *Poller) Wait(events []unix.EpollEvent, msec int) (int, error) {
	return unix.EpollWait(p.fd, events, msec)
}

// Poll is epoll_wait with a zero timeout, as a raw system call: it never
// blocks, so it need not tell the scheduler, which a loop under load would
// otherwise do for every batch of events.
func (p *Poller) Poll(events []unix.EpollEvent) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.fd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// Wake interrupts a Wait, or makes the next one return at once: the
// eventfd becomes readable (a KindWake event) until Woken.
func (p *Poller) Wake() {
	one := [8]byte{1}
	unix.Write(p.wake, one[:])
}

// Woken takes note of a KindWake event.
func (p *Poller) Woken() {
	var b [8]byte
	unix.Read(p.wake, b[:])
}

// AlarmAt makes the alarm go off (a KindAlarm event) at clock time t, now
// being now, both in nanoseconds of one monotonic clock, unless it goes
// off no later already.
func (p *Poller) AlarmAt(now, t int64) error {
	if p.alarmSet != 0 && p.alarmSet <= t {
		return nil
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(t-now, 1))}
	if err := unix.TimerfdSettime(p.alarm, 0, &spec, nil); err != nil {
		return os.NewSyscallError("timerfd_settime", err)
	}
	p.alarmSet = t
	return nil
}

// Rang takes note of a KindAlarm event: the alarm is not set any more.
func (p *Poller) Rang() {
	var b [8]byte
	unix.Read(p.alarm, b[:])
	p.alarmSet = 0
}

// Close closes the Poller's descriptors; the numbers may then be reused,
// so nothing may Wake it after.
func (p *Poller) Close() {
	for _, fd := range [...]int{p.wake, p.alarm, p.fd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

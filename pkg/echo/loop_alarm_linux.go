package echo

import (
	"os"

	"golang.org/x/sys/unix"
)

// loopAlarm is an event loop's timer: a timerfd in its epoll set that
// wakes it when it must look again of its own accord (its stages' timers,
// a timeout sweep, a paused listener, Shutdown's deadlines), so that
// epoll_wait itself never has a timeout. A timeout arms a kernel timer on
// every wait that sleeps, and disarms it on waking: on a virtual machine,
// where programming the timer leaves the guest, that cost a PROXY
// listener, whose header bound is such a timer, 2 µs a connection. The
// alarm is set again only when a time earlier than the one it is set to
// comes; one that goes off for a timer removed since wakes the loop once
// for nothing, and the loop sets it to the next.
type loopAlarm struct {
	fd  int
	set int64 // loop clock time it goes off at; 0: not set
}

func newLoopAlarm() (loopAlarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return loopAlarm{fd: -1}, os.NewSyscallError("timerfd_create", err)
	}
	return loopAlarm{fd: fd}, nil
}

// at makes the alarm go off at loop clock time t, now being now, unless it
// goes off no later already.
func (a *loopAlarm) at(now, t int64) error {
	if a.set != 0 && a.set <= t {
		return nil
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(t-now, 1))}
	if err := unix.TimerfdSettime(a.fd, 0, &spec, nil); err != nil {
		return os.NewSyscallError("timerfd_settime", err)
	}
	a.set = t
	return nil
}

// rang takes note that the alarm went off (its descriptor was readable).
func (a *loopAlarm) rang() {
	var b [8]byte
	unix.Read(a.fd, b[:])
	a.set = 0
}

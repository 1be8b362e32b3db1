package bench

import (
	"encoding/binary"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// startTicker calls tick(from, n) every interval from now on, where n is
// the number of intervals passed since the last call (usually 1) and from
// the number of the first of them, counting from 0 now. It waits on a
// timerfd in the runtime's poller, so a tick wakes it within tens of
// microseconds. It reports false if the timerfd cannot be made.
func startTicker(first, interval time.Duration, tick func(from, n int64)) (stop func(), ok bool) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, false
	}
	// A non-blocking descriptor: os.File reads it through the poller.
	f := os.NewFile(uintptr(fd), "timerfd")
	spec := unix.ItimerSpec{
		Value:    unix.NsecToTimespec(max(int64(first), 1)), // zero would disarm it
		Interval: unix.NsecToTimespec(int64(interval)),
	}
	if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
		f.Close()
		return nil, false
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var buf [8]byte
		var next int64
		for {
			if _, err := f.Read(buf[:]); err != nil {
				return // closed by stop
			}
			n := int64(binary.NativeEndian.Uint64(buf[:]))
			tick(next, n)
			next += n
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { f.Close() })
		wg.Wait()
	}, true
}

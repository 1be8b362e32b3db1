package netpoll

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// waitKinds waits up to msec for events and returns the kinds it found,
// in order.
func waitKinds(t *testing.T, p *Poller, msec int) []int32 {
	t.Helper()
	events := make([]unix.EpollEvent, 8)
	for {
		n, err := p.Wait(events, msec)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds := make([]int32, n)
		for i, ev := range events[:n] {
			kinds[i] = ev.Pad
		}
		return kinds
	}
}

// TestAlarm: the alarm goes off once its time has come, is set again only
// for an earlier time, and is set afresh after it rang.
func TestAlarm(t *testing.T) {
	p := newPoller(t)
	epoch := time.Now()
	now := func() int64 { return int64(time.Since(epoch)) }
	if err := p.AlarmAt(now(), now()+int64(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := p.AlarmAt(now(), now()+int64(2*time.Hour)); err != nil || p.alarmSet > int64(time.Hour)+now() {
		t.Fatalf("a later time moved the alarm to %v (%v)", time.Duration(p.alarmSet), err)
	}
	t0 := now()
	if err := p.AlarmAt(t0, t0+int64(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if kinds := waitKinds(t, p, 10_000); len(kinds) != 1 || kinds[0] != KindAlarm { // an event, not a timeout
		t.Fatalf("events %v within 10s of setting the alarm 1ms ahead, want one KindAlarm", kinds)
	}
	if elapsed := now() - t0; elapsed < int64(time.Millisecond) {
		t.Errorf("it went off after %v, before its time", time.Duration(elapsed))
	}
	p.Rang()
	if kinds := waitKinds(t, p, 0); p.alarmSet != 0 || len(kinds) != 0 {
		t.Errorf("after Rang: set %d, events %v; want 0, none", p.alarmSet, kinds)
	}
}

// TestWake: Wake makes a Wait return a KindWake event until Woken, and
// Poll sees it without blocking.
func TestWake(t *testing.T) {
	p := newPoller(t)
	events := make([]unix.EpollEvent, 4)
	if n, err := p.Poll(events); n != 0 || err != nil {
		t.Fatalf("Poll on a quiet Poller = %d, %v; want 0, nil", n, err)
	}
	p.Wake()
	if n, err := p.Poll(events); n != 1 || err != nil || events[0].Pad != KindWake {
		t.Fatalf("Poll after Wake = %d, %v (kind %d); want one KindWake", n, err, events[0].Pad)
	}
	p.Woken()
	if kinds := waitKinds(t, p, 0); len(kinds) != 0 {
		t.Errorf("after Woken: events %v, want none", kinds)
	}
}

// TestSockets: a listening socket added as KindListener reports a
// connection, Accept4 takes it with the peer's address, and Read, Write
// and Close move its bytes; a connection's socket, modified to wait for
// writability, reports it as KindConn; Del takes the listener out.
func TestSockets(t *testing.T) {
	p := newPoller(t)
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f, err := ln.File() // a blocking duplicate, for Accept4 to make non-blocking sockets from
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	lfd := int(f.Fd())
	if err := p.Add(lfd, unix.EPOLLIN, KindListener); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if kinds := waitKinds(t, p, 10_000); len(kinds) != 1 || kinds[0] != KindListener {
		t.Fatalf("events %v after a dial, want one KindListener", kinds)
	}
	fd, peer, err := Accept4(lfd)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			Close(fd)
		}
	})
	if want := netip.MustParseAddrPort(c.LocalAddr().String()); peer != want {
		t.Errorf("Accept4 peer %v, want %v", peer, want)
	}
	if err := p.Del(lfd); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(fd, unix.EPOLLIN, KindConn); err != nil {
		t.Fatal(err)
	}
	if err := p.Mod(fd, unix.EPOLLOUT, KindConn); err != nil {
		t.Fatal(err)
	}
	if kinds := waitKinds(t, p, 10_000); len(kinds) != 1 || kinds[0] != KindConn {
		t.Fatalf("events %v for a writable connection, want one KindConn", kinds)
	}

	buf := make([]byte, 16)
	if n, err := Read(fd, buf); n != -1 || err != unix.EAGAIN {
		t.Errorf("Read with nothing sent = %d, %v; want -1, EAGAIN", n, err)
	}
	msg := []byte("raw hello")
	if n, err := Retry(func() (int, error) { return Write(fd, msg) }); n != len(msg) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got := make([]byte, len(msg))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("peer read %q, %v; want %q", got, err, msg)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := p.Mod(fd, unix.EPOLLIN, KindConn); err != nil {
		t.Fatal(err)
	}
	waitKinds(t, p, 10_000)
	if n, err := Read(fd, buf); n != len(msg) || err != nil || !bytes.Equal(buf[:n], msg) {
		t.Errorf("Read = %d %q, %v; want %q", n, buf[:max(n, 0)], err, msg)
	}
	closed = true
	if err := Close(fd); err != nil {
		t.Errorf("Close = %v", err)
	}
	if n, err := c.Read(buf); n != 0 || err == nil {
		t.Errorf("peer read after Close = %d, %v; want EOF", n, err)
	}
}

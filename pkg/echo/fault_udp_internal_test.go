package echo

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestUDPFaultsOffAllocs: a UDP listener without faults has no fault
// state at all (readPackets' faults is nil); one whose faults inject none
// on UDP (a zero Faults, for SIGHUP, or stream faults only) answers
// plainly with no allocation a datagram.
func TestUDPFaultsOffAllocs(t *testing.T) {
	if fs, err := (&Server{}).newFaultStage(ListenerOptions{}); fs != nil || err != nil {
		t.Fatalf("a Server without faults: stage %v, %v; want none", fs, err)
	}
	for _, f := range []*Faults{{}, {Rate: 1024, ResetAfter: FaultAfter{Bytes: 10}}} {
		s := &Server{Faults: f}
		if err := s.startFaults(); err != nil {
			t.Fatal(err)
		}
		fs, err := s.newFaultStage(ListenerOptions{})
		if err != nil || fs == nil {
			t.Fatalf("stage %v, %v", fs, err)
		}
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u := s.newUDPFaults(pc, fs, nil, s.packetGuard())
		p := packetPeer{ap: netip.MustParseAddrPort("127.0.0.1:40000")}
		data, now := make([]byte, 100), time.Now()
		if n := testing.AllocsPerRun(1000, func() {
			if u.answer(p, data, now) {
				t.Fatal("a fault acted")
			}
			u.answered()
		}); n != 0 {
			t.Errorf("Faults %+v: %v allocations a datagram", f, n)
		}
		u.stop()
		pc.Close()
	}
}

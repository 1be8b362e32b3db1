package echo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"time"
)

// MaxDatagramSize is the largest UDP payload over IPv4 (65535 bytes less
// the 20-byte IP and 8-byte UDP headers), the largest echo a udp:// address
// carries everywhere. IPv6 carries up to MaxDatagramSizeIPv6.
const MaxDatagramSize = 65507

// MaxDatagramSizeIPv6 is the largest UDP payload over IPv6 (65535 bytes
// less the 8-byte UDP header; the IPv6 header is not counted in its
// payload length).
const MaxDatagramSizeIPv6 = 65527

// packetBufferSize holds any UDP payload, IPv6's included.
const packetBufferSize = 64 << 10

// maxPacketReaders bounds the goroutines, each with its own buffer, that
// read one packet connection.
const maxPacketReaders = 4

// ServePacket echoes every datagram that arrives on pc back to its sender,
// unchanged, as RFC 862 describes, until pc fails or the server shuts down.
// It always closes pc. After Shutdown or Close it returns ErrServerClosed.
//
// A few goroutines (one when datagrams are logged, which keeps the debug
// transcript in order) read pc, each into one 64 KiB buffer of its own that
// it reuses: a flood of datagrams costs no memory beyond them. Each datagram
// is logged at debug level on the per-peer logger "echo_{host}_{port}" as
// "received b'...'" and "sent b'...'", as for TCP. BufferSize does not
// apply: a datagram is echoed whole, never with more bytes than arrived.
//
// Datagrams that could start an echo loop or make the server a reflector
// are dropped unanswered (CERT CA-1996-01; docs/udp.md): from source port
// 0, from one of the sockets this Server serves, from a well-known service
// that answers back (echo, chargen, DNS, NTP, ...) and, unless
// UDPAllowLowPorts, from any port below 1024; and past UDPRatePerSource
// from one source address. So are those of a sender that Allow or Deny
// refuses. Each drop is told to the Observer (PacketDropObserver) and
// logged at most once a second for each reason.
//
// Server.Faults, with ListenerOptions.Faults over them, make it drop,
// duplicate, reorder, delay or corrupt answers on purpose (fault_udp.go,
// docs/faults.md); without faults it pays nothing for them.
func (s *Server) ServePacket(pc net.PacketConn) error {
	return s.servePacket(pc, s.ListenerOptions, func() {})
}

// servePacket is ServePacket, with opts for pc's faults (the only
// per-listener options UDP takes); it calls started as serve does.
func (s *Server) servePacket(pc net.PacketConn, opts ListenerOptions, started func()) error {
	defer started()
	if err := s.validate(); err != nil {
		pc.Close()
		return err
	}
	if err := s.validatePacket(); err != nil {
		pc.Close()
		return err
	}
	fs, err := s.newFaultStage(opts)
	if err != nil {
		pc.Close()
		return err
	}
	defer s.dropFaultStage(fs)
	if !s.trackPacketConn(&pc, true) {
		pc.Close()
		return ErrServerClosed
	}
	defer s.trackPacketConn(&pc, false)
	defer pc.Close()
	s.warnBusyPollUnused(pc.LocalAddr())
	s.noGreetingOnUDP(pc.LocalAddr())
	if s.Observer != nil { // readiness (limits.go, observer.go)
		lname := packetListenerName(pc)
		s.Observer.Listening(lname, true)
		defer s.Observer.Listening(lname, false)
	}
	started()

	// One reader when each datagram is logged keeps the transcript in
	// order; otherwise a few share the load.
	n := 1
	if !s.logsData() {
		n = min(runtime.GOMAXPROCS(0), maxPacketReaders)
	}
	var obs ConnObserver
	if po, ok := s.Observer.(PacketObserver); ok {
		obs = po.PacketListener(packetListenerName(pc))
	}
	var faults *udpFaults // fault_udp.go; nil: no fault, at no cost
	if fs != nil {
		faults = s.newUDPFaults(pc, fs, obs, s.packetGuard())
		defer faults.stop() // sends what it holds, before pc closes
	}
	errs := make(chan error, n)
	for range n {
		go func() { errs <- s.readPackets(pc, obs, s.packetGuard(), faults) }()
	}
	var first error
	for range n {
		err := <-errs
		if first == nil {
			first = err
			if !errors.Is(err, ErrServerClosed) {
				pc.Close() // stops the other readers
			}
		}
	}
	return first
}

// readPackets is one reader of ServePacket: it reads a datagram into its
// buffer, screens it (packet_guard.go), writes it back to the sender, and
// reads the next. obs, if not nil, is told each datagram's bytes and echo
// latency, and each drop if it is a PacketDropObserver. faults, if not
// nil, answers the datagrams its faults pick (fault_udp.go).
func (s *Server) readPackets(pc net.PacketConn, obs ConnObserver, g *udpGuard, faults *udpFaults) error {
	buf := make([]byte, packetBufferSize)
	udp, _ := pc.(*net.UDPConn)
	dobs, _ := obs.(PacketDropObserver)
	listener := packetListenerName(pc)
	var delay time.Duration
	for {
		var (
			n    int
			peer netip.AddrPort
			addr net.Addr
			err  error
		)
		if udp != nil {
			n, peer, err = udp.ReadFromUDPAddrPort(buf)
		} else {
			n, addr, err = pc.ReadFrom(buf)
		}
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("echo: read on %s: %w", pc.LocalAddr(), err)
			}
			delay = nextAcceptDelay(delay)
			s.Logger.Warn().Str("logger", "main").Err(err).Dur("retry_in", delay).
				Msgf("read error: %v; retrying in %v", rootCause(err), delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		p := packetPeer{ap: peer, addr: addr}
		data := buf[:n] // the answer: exactly the bytes received
		if src, ok := p.source(); ok {
			if r, ok := s.screen(g, src, n); !ok {
				s.dropped(g, dobs, listener, p, src, n, r)
				continue
			}
		}
		debug := s.logsData()
		if debug {
			s.logDatagram(p, "received ", data)
		}
		var readAt time.Time
		if obs != nil {
			obs.Received(n)
			readAt = time.Now()
		}
		if faults != nil {
			if readAt.IsZero() {
				readAt = time.Now()
			}
			if faults.answer(p, data, readAt) {
				continue
			}
		}
		if udp != nil {
			_, err = udp.WriteToUDPAddrPort(data, peer)
		} else {
			_, err = pc.WriteTo(data, addr)
		}
		if obs != nil {
			if err != nil {
				obs.Sent(0, -1)
			} else {
				obs.Sent(n, time.Since(readAt))
			}
		}
		if err != nil {
			if s.shuttingDown() && errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			s.writeFailed(g, p, err)
			continue
		}
		if debug {
			s.logDatagram(p, "sent ", data)
		}
		if faults != nil {
			faults.answered()
		}
	}
}

// packetPeer is the sender of a datagram: ap for a *net.UDPConn, else addr.
type packetPeer struct {
	ap   netip.AddrPort
	addr net.Addr
}

// source returns the sender's address, unmapped and without zone, and
// false if it has none (a Unix datagram socket's peer).
func (p packetPeer) source() (netip.AddrPort, bool) {
	ap := p.ap
	if p.addr != nil {
		var ok bool
		if ap, ok = addrPort(p.addr); !ok {
			return netip.AddrPort{}, false
		}
	}
	if !ap.Addr().IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
}

// names returns the per-peer logger name, echo_{host}_{port}, and the
// peer's host:port. IPv4 peers of a dual-stack socket are shown as IPv4
// (127.0.0.1, not ::ffff:127.0.0.1), as for TCP.
func (p packetPeer) names() (name, peer string) {
	if p.addr != nil {
		return LoggerName(p.addr), p.addr.String()
	}
	ip := p.ap.Addr().Unmap()
	port := strconv.Itoa(int(p.ap.Port()))
	return "echo_" + ip.String() + "_" + port, netip.AddrPortFrom(ip, p.ap.Port()).String()
}

// logDatagram logs a datagram at debug level as the seed logs a chunk:
// "received b'...'" or "sent b'...'".
func (s *Server) logDatagram(p packetPeer, verb string, data []byte) {
	e := s.Logger.Debug()
	if e == nil {
		return
	}
	name, peer := p.names()
	limit := s.logMaxBytes()
	shown := len(data)
	if limit >= 0 {
		shown = min(shown, limit)
	}
	msg := AppendQuoteMax(append(make([]byte, 0, len(verb)+shown+32), verb...), data, limit)
	e.Str("logger", name).Str("peer", peer).Int("bytes", len(data)).Msg(string(msg))
}

// trackPacketConn adds or removes pc; adding fails once the server shuts
// down. The guard learns the local addresses of the sockets served, to
// drop datagrams from them.
func (s *Server) trackPacketConn(pc *net.PacketConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		addrs := make([]net.Addr, 0, len(s.packetConns))
		for c := range s.packetConns {
			addrs = append(addrs, (*c).LocalAddr())
		}
		s.packetGuard().setOwn(addrs)
	}()
	if !add {
		delete(s.packetConns, pc)
		s.packetWG.Done()
		return true
	}
	if s.shuttingDown() {
		return false
	}
	if s.packetConns == nil {
		s.packetConns = make(map[*net.PacketConn]struct{})
	}
	s.packetConns[pc] = struct{}{}
	s.packetWG.Add(1)
	return true
}

// stopPacketConns makes every ServePacket return. With hard set it closes
// their sockets; otherwise it ends their pending reads, so that each reader
// finishes echoing the datagram in hand, sees the shutdown and returns.
func (s *Server) stopPacketConns(hard bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pc := range s.packetConns {
		if hard || (*pc).SetReadDeadline(aLongTimeAgo) != nil {
			(*pc).Close()
		}
	}
}

// packetListenerName is a UDP socket's name in the Observer's calls and in
// log lines: its address as --addr takes it, udp://HOST:PORT, so that a TCP
// and a UDP listener on the same port are told apart.
func packetListenerName(pc net.PacketConn) string {
	return NetworkUDP + "://" + pc.LocalAddr().String()
}

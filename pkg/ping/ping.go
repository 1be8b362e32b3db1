package ping

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/echoctl/echoctl/pkg/echo"
)

// Run sends the probes cfg describes, one after the other, and returns
// their summary. Its error is for an invalid cfg only: a failed probe is
// counted in the Summary and told to OnProbe. A probe cut short by the end
// of ctx (Ctrl-C) is counted as sent and not answered (Kind
// "interrupted"), as ping(8) counts a packet it sent, but not told, and
// its connection is not in the Summary's Connect either.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	cfg = cfg.withDefaults()
	r := newRun(cfg)
	defer r.close()
	sum := newSummary(clientAddr(&r.client))
	sum.count = cfg.Count
	start := time.Now()
	next := start
	parent := ctx
	if cfg.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, start.Add(cfg.Deadline))
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	// With a Deadline, Count is the replies to wait for, as ping -c with
	// -w; without, the probes to send.
	more := func(seq int) bool {
		switch {
		case cfg.Count == 0:
			return true
		case cfg.Deadline > 0:
			return sum.Received < cfg.Count
		}
		return seq <= cfg.Count
	}
	cut := false // the run ended with ctx
	for seq := 1; more(seq); seq++ {
		if wait := time.Until(next); seq > 1 && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		// The deadline's own check: its timer may not have fired yet
		// when the interval's, due at the same time, has.
		if ctx.Err() != nil || cfg.Deadline > 0 && !time.Now().Before(deadline) {
			cut = true
			break
		}
		next = time.Now().Add(cfg.Interval)
		p := r.probe(ctx, seq)
		if p.Err != nil && ctx.Err() != nil {
			p.Kind, p.Connect = "interrupted", 0
			sum.add(p)
			cut = true
			break
		}
		sum.add(p)
		if cfg.OnProbe != nil {
			cfg.OnProbe(p)
		}
	}
	sum.Elapsed = time.Since(start)
	sum.Cut = cut && cfg.Count > 0 && sum.Received < cfg.Count && parent.Err() == nil
	return sum.done(), nil
}

// run is a ping run's state: the client that dials, the connection kept
// between probes (Reuse, UDP) and the buffers.
type run struct {
	cfg    Config
	client echo.Client
	udp    bool
	path   string // a Unix socket's, as dialed
	id     uint64 // this run's identifier, in every probe
	conn   net.Conn
	probe1 []byte     // the probe being sent
	dgram  *datagrams // UDP's answers
	echo   stream
	once   *onceResolver // the run's addresses, unless ResolveEach
}

func newRun(cfg Config) *run {
	r := &run{cfg: cfg, client: *cfg.Client}
	r.client.Logger = zerolog.Nop()
	a, _ := echo.ParseAddr(clientAddr(&r.client)) // Validate parsed it
	r.udp = a.Network == echo.NetworkUDP
	r.path = a.Path
	if cfg.Source.IsValid() {
		// The Dialer's LocalAddr must be of the network it dials.
		if r.udp {
			r.client.Dialer.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.Source, 0))
		} else {
			r.client.Dialer.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(cfg.Source, 0))
		}
	}
	if !cfg.ResolveEach {
		r.once = &onceResolver{r: r.client.Resolver}
		r.client.Resolver = r.once
	}
	var idb [8]byte
	rand.Read(idb[:])
	r.id = binary.BigEndian.Uint64(idb[:])
	r.probe1 = make([]byte, cfg.Size)
	if r.udp {
		r.dgram = newDatagrams(cfg.Size)
	}
	return r
}

// probe sends probe seq and waits for its echo. Over UDP, where a connect
// cannot tell whether a server is there, a probe refused (ICMP port
// unreachable) is sent again at once to the name's next address, as a TCP
// connect tries them in turn; the run then keeps to the address that
// answered.
func (r *run) probe(ctx context.Context, seq int) Probe {
	start := time.Now()
	for tried := 1; ; tried++ {
		p := r.probeOnce(ctx, seq, start)
		if !r.udp || r.once == nil || p.Kind != "refused" || tried >= len(r.once.ips) || ctx.Err() != nil {
			return p
		}
		r.once.rotate()
		r.closeConn()
	}
}

// probeOnce sends probe seq, started at start, to the address the client
// dials first and waits for its echo.
func (r *run) probeOnce(ctx context.Context, seq int, start time.Time) Probe {
	p := Probe{Seq: seq, Time: start}
	deadline := p.Time.Add(r.cfg.Timeout)
	keep := r.udp && !r.cfg.ResolveEach || r.cfg.Reuse
	if r.conn == nil || !keep {
		r.closeConn()
		dctx, cancel := context.WithDeadline(ctx, deadline)
		conn, err := r.client.DialContext(dctx)
		cancel()
		if err != nil {
			p.Err, p.Kind = err, kind(err)
			return p
		}
		r.conn = conn
		if !r.udp {
			p.Connect = time.Since(p.Time)
		}
	}
	p.Peer = r.conn.RemoteAddr().String()
	if r.path != "" {
		// The server's name for its socket may be another path (echoctl
		// binds it elsewhere and renames it into place): the one dialed.
		p.Peer = r.path
	}
	payload(r.probe1, r.id, seq)
	stop := context.AfterFunc(ctx, func() { r.conn.SetDeadline(time.Now()) })
	var err error
	if r.udp {
		p.RTT, err = r.dgram.exchange(r.conn, r.probe1, deadline, &p)
	} else {
		r.echo.conn = r.conn
		p.RTT, err = r.echo.exchange(r.probe1, deadline)
	}
	stop()
	if err != nil {
		p.Err, p.Kind = err, kind(err)
		if !r.udp {
			r.closeConn() // a stream in an unknown state is not reused
		}
	}
	if !keep {
		r.closeConn()
	}
	return p
}

func (r *run) closeConn() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

func (r *run) close() { r.closeConn() }

// onceResolver answers every lookup with the first answer it got: the
// run's addresses stay those of its start unless ResolveEach.
type onceResolver struct {
	r    echo.Resolver
	ips  []netip.Addr
	host string
}

// rotate moves the first address last: the next dial goes to the next.
func (o *onceResolver) rotate() {
	if len(o.ips) > 1 {
		o.ips = append(slices.Clone(o.ips[1:]), o.ips[0])
	}
}

// LookupNetIP implements echo.Resolver.
func (o *onceResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if o.ips != nil && host == o.host {
		return o.ips, nil
	}
	r := o.r
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, network, host)
	if err == nil {
		o.ips, o.host = ips, host
	}
	return ips, err
}

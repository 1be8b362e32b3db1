package echo

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// The faults of Server.Faults and of each listener's
// ListenerOptions.Faults (faults.go) at work: one write stage (stage.go)
// a listener, so that both engines run them alike. Its pacer, made for
// each connection that Share picks, delays, slices and paces the pieces
// of each echo, flips a bit of a chunk (a rewriter) and ends the
// connection (an ender) when a close, reset or stall is due or when the
// connection is refused. It is appended after any other write stage, so
// that the piece it chooses is the one written and its count of bytes
// echoed is exact. A UDP listener reads the faults in force from the same
// stage (fault_udp.go).

// startFaults checks s.Faults and records it, once, before any listener
// serves, as the faults every listener starts from (newFaultStage); nil:
// a listener has faults only if its ListenerOptions set some.
func (s *Server) startFaults() error {
	if err := s.Faults.Validate(); err != nil {
		return err
	}
	s.faults.Do(func() {
		if s.Faults != nil {
			f := *s.Faults
			s.faultBase.Store(&f)
		}
	})
	return nil
}

// newFaultStage returns the fault stage of a listener served with opts:
// the Server's faults with opts.Faults over them, registered for
// SetFaults until dropFaultStage; nil, at no cost, when neither the
// Server nor opts has faults.
func (s *Server) newFaultStage(opts ListenerOptions) (*faultStage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.faultBase.Load()
	if base == nil && len(opts.Faults) == 0 {
		return nil, nil
	}
	f, err := opts.faultsOver(base)
	if err != nil {
		return nil, err
	}
	st := &faultStage{over: opts}
	st.cur.Store(newFaultConfig(f))
	if s.faultStages == nil {
		s.faultStages = make(map[*faultStage]struct{})
	}
	s.faultStages[st] = struct{}{}
	return st, nil
}

// dropFaultStage forgets st, whose listener has stopped; nil is none.
func (s *Server) dropFaultStage(st *faultStage) {
	if st == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faultStages, st)
}

// SetFaults replaces the Server's faults for the connections (and the
// datagrams) that arrive from now on (those already open keep theirs), as
// serve does on SIGHUP; nil or a zero Faults turns them off. A listener's
// own fault keys (ListenerOptions.Faults, an address query's fault-*
// keys) stay over the new faults, key by key. f is copied, after
// Validate. It needs a Server that Bind or Serve started with
// Server.Faults set (a zero Faults, injecting none, will do: it costs each
// connection a check); otherwise it changes nothing and says so.
func (s *Server) SetFaults(f *Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faultBase.Load() == nil {
		return fmt.Errorf("%w: the server was not bound or served with Server.Faults set, so its faults cannot change", ErrInvalidFault)
	}
	base := &Faults{}
	if f != nil {
		*base = *f
	}
	next := make(map[*faultStage]*faultConfig, len(s.faultStages))
	for st := range s.faultStages {
		lf, err := st.over.faultsOver(base)
		if err != nil {
			return err
		}
		next[st] = newFaultConfig(lf)
	}
	s.faultBase.Store(base)
	for st, cfg := range next {
		st.cur.Store(cfg)
	}
	s.reapplyDeferAccept()
	return nil
}

// faultStage is the write stage of a listener's faults: the faults in
// force for connections that open now.
type faultStage struct {
	cur  atomic.Pointer[faultConfig]
	over ListenerOptions // the listener's own fault keys, put back over SetFaults' faults
	mu   sync.Mutex      // guards the Rand sources
}

// faultConfig is a copy of a Faults, with what follows from it.
type faultConfig struct {
	f     Faults
	burst int // the rate's bucket, in bytes
}

// newFaultConfig returns the faults of f (none for nil).
func newFaultConfig(f *Faults) *faultConfig {
	cfg := &faultConfig{}
	if f != nil {
		cfg.f = *f
	}
	if cfg.f.Rate > 0 {
		cfg.burst = max(min(cfg.f.Rate/10, 64<<10), 1)
	}
	return cfg
}

// draw returns a random number from cfg's source.
func (s *faultStage) draw(cfg *faultConfig) uint64 {
	if cfg.f.Rand == nil {
		return rand.Uint64()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return cfg.f.Rand.Uint64()
}

// chance reports true with probability p, given a random number u.
func chance(u uint64, p float64) bool {
	return p >= 1 || float64(u>>11)/(1<<53) < p
}

// pacer decides, once per connection, whether the faults in force apply
// to c; if they do it returns their state for c.
func (s *faultStage) pacer(c *conn) pacer {
	cfg := s.cur.Load()
	f := &cfg.f
	if !f.streamEnabled() {
		return nil
	}
	if share := f.Share; share > 0 && share < 1 && !chance(s.draw(cfg), share) {
		return nil
	}
	fc := &faultConn{cfg: cfg, c: c, opened: time.Now()}
	fc.rng = rand.New(rand.NewPCG(s.draw(cfg), s.draw(cfg)))
	fc.refused = f.Refuse > 0 && chance(fc.rng.Uint64(), f.Refuse)
	if f.Rate > 0 {
		fc.limiter = rate.NewLimiter(rate.Limit(f.Rate), cfg.burst)
	}
	for _, a := range []FaultAfter{f.CloseAfter, f.ResetAfter, f.StallAfter} {
		if a.Bytes > 0 && (fc.byBytes == 0 || a.Bytes < fc.byBytes) {
			fc.byBytes = a.Bytes
		}
		if at := fc.opened.Add(a.Time); a.Time > 0 && (fc.byTime.IsZero() || at.Before(fc.byTime)) {
			fc.byTime = at
		}
	}
	return fc
}

// faultConn is the faults' state for one connection.
type faultConn struct {
	cfg     *faultConfig // the faults in force when it opened
	c       *conn
	rng     *rand.Rand // seeded from the stage's source when the connection opened
	opened  time.Time
	limiter *rate.Limiter // nil without a rate

	given   int64     // bytes handed out to be written so far
	byBytes int64     // the first ending by bytes echoed (0: none)
	byTime  time.Time // the first ending by time (zero: none)
	refused bool      // reset at once (Refuse)
	acted   uint16    // the kinds already logged and counted, a bit each
}

// act logs and counts kind the first time it acts on the connection.
func (fc *faultConn) act(kind FaultKind, msg string) {
	bit := uint16(1) << kind
	if fc.acted&bit != 0 {
		return
	}
	fc.acted |= bit
	if e := fc.c.log(zerolog.InfoLevel); e != nil {
		e.Str("fault", kind.String()).Msg(msg)
	}
	if fo, ok := fc.c.obs.(FaultObserver); ok {
		fo.Fault(kind)
	}
}

// slices implements slicingPacer.
func (fc *faultConn) slices() bool { return fc.cfg.f.Slice > 0 }

// next implements pacer: the delay (and jitter) before a chunk's first
// piece, slices with their delay, the byte count at which an ending is
// due, and the rate's token bucket; unpaced, only the byte count.
func (fc *faultConn) next(rest int, first, unpaced bool) (n int, wait time.Duration) {
	f := &fc.cfg.f
	n = rest
	if unpaced {
		n = fc.untilEnding(n)
		fc.given += int64(n)
		return n, 0
	}
	if first && (f.Delay > 0 || f.Jitter > 0) {
		d := f.Delay
		if f.Jitter > 0 {
			d += time.Duration(fc.rng.Int64N(2*int64(f.Jitter)+1)) - f.Jitter
		}
		wait += max(d, 0)
		if f.Jitter > 0 {
			fc.act(FaultDelay, fmt.Sprintf("fault: delaying echoes by %v±%v", f.Delay, f.Jitter))
		} else {
			fc.act(FaultDelay, fmt.Sprintf("fault: delaying echoes by %v", f.Delay))
		}
	}
	if f.Slice > 0 {
		if !first {
			wait += f.SliceDelay
		}
		if n > f.Slice {
			n = f.Slice
			fc.act(FaultSlice, sliceLine(f.Slice, f.SliceDelay))
		}
	}
	n = fc.untilEnding(n)
	if fc.limiter != nil {
		n = min(n, fc.cfg.burst)
		if d := fc.limiter.ReserveN(time.Now(), n).Delay(); d > 0 {
			wait += d
			fc.act(FaultRate, fmt.Sprintf("fault: pacing echoes to %s/s", formatBytes(int64(f.Rate))))
		}
	}
	fc.given += int64(n)
	return n, wait
}

// untilEnding cuts a piece of n bytes where an ending by bytes echoed
// falls due, if it falls within it.
func (fc *faultConn) untilEnding(n int) int {
	if fc.byBytes > 0 {
		n = int(min(int64(n), max(fc.byBytes-fc.given, 1)))
	}
	return n
}

// rewrite implements rewriter: with probability Corrupt, one bit of p,
// chosen at random, is flipped.
func (fc *faultConn) rewrite(p []byte) {
	f := &fc.cfg.f
	if f.Corrupt <= 0 || len(p) == 0 || !chance(fc.rng.Uint64(), f.Corrupt) {
		return
	}
	p[fc.rng.IntN(len(p))] ^= 1 << fc.rng.IntN(8)
	fc.act(FaultCorrupt, fmt.Sprintf("fault: flipping a bit of echoed chunks with probability %v", f.Corrupt))
}

// ending implements ender: a refused connection is reset at once; then
// the first of reset-after, stall-after and close-after that is due acts.
// A close that is due by time waits for the end of the chunk being
// written: what was read before it is owed.
func (fc *faultConn) ending(mid bool) ending {
	if fc.refused {
		fc.act(FaultRefuse, "fault: refusing the connection with a reset")
		return endReset
	}
	byBytes := fc.byBytes > 0 && fc.given >= fc.byBytes
	byTime := !fc.byTime.IsZero() && !time.Now().Before(fc.byTime)
	if !byBytes && !byTime {
		return endNone
	}
	f := &fc.cfg.f
	for _, e := range []struct {
		after FaultAfter
		end   ending
		kind  FaultKind
		verb  string
	}{
		{f.ResetAfter, endReset, FaultReset, "reset"},
		{f.StallAfter, endStall, FaultStall, "stalling"},
		{f.CloseAfter, endClose, FaultClose, "closing"},
	} {
		a := e.after
		due := (a.Bytes > 0 && fc.given >= a.Bytes) || (a.Time > 0 && byTime && !fc.opened.Add(a.Time).After(time.Now()))
		if !due || (e.end == endClose && mid && a.Bytes == 0) {
			continue
		}
		fc.act(e.kind, "fault: "+e.verb+" "+a.describe())
		return e.end
	}
	return endNone
}

// endAt implements ender: the first ending due by time.
func (fc *faultConn) endAt() time.Time { return fc.byTime }

// errFault is why a connection that a fault ended closed: reason
// CloseFault, logged as such, not as an error (the fault logged itself).
var errFault = errors.New("ended by a fault")

// sliceLine is the slice fault's log line: "fault: writing echoes 4 bytes
// at a time, 50ms apart", "1 byte at a time" with no wait between.
func sliceLine(size int, delay time.Duration) string {
	unit := "bytes"
	if size == 1 {
		unit = "byte"
	}
	line := fmt.Sprintf("fault: writing echoes %d %s at a time", size, unit)
	if delay > 0 {
		line += fmt.Sprintf(", %v apart", delay)
	}
	return line
}

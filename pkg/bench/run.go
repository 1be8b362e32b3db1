package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/echoctl/echoctl/pkg/echo"
)

// maxDialers bounds how many connects are in flight at once, so that
// hundreds or thousands of connections open gradually enough for a server
// with a short listen backlog.
const maxDialers = 64

// Histogram bounds, in nanoseconds: anything slower than an hour is
// recorded as an hour.
const (
	histLowest  = 1
	histHighest = int64(time.Hour)
	histDigits  = 3
)

// endGrace is how long after the end of the measured window the run may
// go on while the final figures are read.
const endGrace = 250 * time.Millisecond

// retryBackoff is the first pause before retrying a refused connect; it
// doubles up to maxRetryBackoff.
const (
	retryBackoff    = 5 * time.Millisecond
	maxRetryBackoff = 100 * time.Millisecond
	// failPause is the pause after an error before a connection is opened
	// again, so that a failing server is not hammered in a tight loop.
	failPause = 10 * time.Millisecond
	// noServerWait is how long from its start a run retries refused and
	// timed-out connects while none has ever succeeded: a server that is
	// not running ends the run with ErrNoServer within about this long,
	// rather than after its whole length.
	noServerWait = time.Second
)

// errStopped is returned inside a run by operations cut short because the
// run ended; it is never counted or returned from Run.
var errStopped = errors.New("bench: run ended")

// Run runs the load described by cfg and returns what it measured. It
// returns after cfg.Warmup+cfg.Duration, plus the little it takes to close
// what is open, or sooner if ctx ends: the Result then covers the time
// measured so far, says so (Interrupted), and Run returns an error
// wrapping ErrInterrupted.
//
// Run returns a *MismatchError for the first echo that differed from what
// was sent, an error wrapping ErrInterrupted if ctx ended first, one
// wrapping ErrRunFailed if there were other errors, one wrapping
// ErrNoServer, with a nil Result, if no connection could be opened at all
// (see ErrNoServer), and one wrapping ErrInvalidConfig, with a nil Result,
// if cfg cannot be run. With any other error the Result is still filled
// in.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := newRunner(cfg)
	if r.network.Network == echo.NetworkUDP {
		return r.runUDP(ctx)
	}
	return r.run(ctx)
}

// runner is the state of one run.
type runner struct {
	cfg     Config
	network echo.Addr   // cfg.Addr, parsed
	tls     *tls.Config // for a tls:// address; see clientTLS
	pattern []byte      // pattern[i] == byte(i % patternPeriod)
	dialer  net.Dialer
	dialSem chan struct{}
	// addr is the address to dial: cfg.Addr until the first connect
	// succeeds, then the IP address it reached, so that later connects
	// skip name resolution.
	addr atomic.Pointer[string]

	// runID starts every datagram of a udp:// run (UDPHeaderSize).
	runID [8]byte
	// heard is set once a udp:// run received a datagram: a server is
	// there, and refused datagrams are then errors, not its absence.
	heard atomic.Bool

	// handshakes counts the TLS handshakes completed, resumed those that
	// resumed a session (Config.TLSResume).
	handshakes, resumed atomic.Int64

	start        time.Time
	measureStart time.Time // recording starts
	end          time.Time // the run ends
	// stopAt is end, or the caller's deadline if that is sooner: the
	// net package's own timers for that deadline may fire before the
	// context reports it, so done checks the clock too.
	stopAt     time.Time
	retryUntil time.Time // refused or timed-out connects are retried until then
	// noServerUntil is how long such connects are retried while none has
	// ever succeeded; see noServerWait.
	noServerUntil time.Time

	// stop cancels ctx: it ends the run early when no connection can be
	// opened (fatal says why).
	stop context.CancelFunc

	ctx      context.Context // done at end, or when the caller cancels
	stopping atomic.Bool     // set as ctx ends, before live connections are cut
	sampled  chan struct{}   // closed once the end-of-run figures are read

	pacer *pacer // the schedule of a run with a Rate; nil without

	open     atomic.Int64
	connects atomic.Int64
	retries  atomic.Int64
	workers  []*worker

	liveMu sync.Mutex
	live   map[net.Conn]struct{}
	halted bool

	// hist holds the measured window's latencies: the sampler adds each
	// second's to it.
	hist *hdrhistogram.Histogram

	mu       sync.Mutex
	errs     ErrorCounts
	firstErr string
	firstMM  *MismatchError
	fatal    error // the error that ended the run early, if one did
	// greetings counts the connections by the greeting they read
	// (Config.Greeting).
	greetings Greetings
}

// patternPeriod is the period of the bytes sent: a prime, so that messages
// of most sizes differ from the one before, and an echo that repeats,
// drops or reorders data shows up as a mismatch.
const patternPeriod = 251

func newRunner(cfg Config) *runner {
	longest := max(cfg.Size, cfg.Chunk, 1)
	pattern := make([]byte, patternPeriod+longest)
	for i := range pattern {
		pattern[i] = byte(i % patternPeriod)
	}
	r := &runner{
		cfg:     cfg,
		pattern: pattern,
		dialSem: make(chan struct{}, maxDialers),
		sampled: make(chan struct{}),
		live:    make(map[net.Conn]struct{}),
		hist:    hdrhistogram.New(histLowest, histHighest, histDigits),
	}
	if cfg.Greeting {
		r.greetings = Greetings{}
	}
	r.network, _ = echo.ParseAddr(cfg.Addr) // Validate has parsed it
	r.tls = clientTLS(cfg, r.network)
	r.addr.Store(&r.cfg.Addr)
	return r
}

// data returns the n bytes sent at stream offset off.
func (r *runner) data(off int64, n int) []byte {
	i := int(off % patternPeriod)
	return r.pattern[i : i+n]
}

// pace waits until connection i of cfg.Conns is due to open: connections
// open spread evenly over the first half of the warmup, so that a server
// with a short listen backlog can accept them as they come (a full accept
// queue makes the kernel drop or, with SYN cookies, later reset them). It
// reports whether the run is still going.
func (r *runner) pace(i int) bool {
	ramp := r.cfg.Warmup / 2
	if ramp <= 0 || i == 0 {
		return !r.done()
	}
	due := r.start.Add(rampOffset(ramp, i, r.cfg.Conns))
	if d := time.Until(due); d > 0 {
		return r.sleep(d)
	}
	return !r.done()
}

// rampOffset is when connection i of conns opens, the connections spread
// evenly over ramp: in floating point, as ramp×i overflows an int64 for a
// million connections over a warmup of hours (exact to the nanosecond up
// to 104 days).
func rampOffset(ramp time.Duration, i, conns int) time.Duration {
	return time.Duration(float64(ramp) * float64(i) / float64(conns))
}

// inWindow reports whether an echo verified at t counts in the measured
// window: from measureStart, up to but not including end.
func (r *runner) inWindow(t time.Time) bool {
	return !t.Before(r.measureStart) && t.Before(r.end)
}

// done reports whether the run is ending: halted, or past its end (the
// deadlines capped at the end can expire just before halt runs).
func (r *runner) done() bool {
	return r.stopping.Load() || r.ctx.Err() != nil || !time.Now().Before(r.stopAt)
}

// opDeadline is the deadline of an operation starting at t: OpTimeout
// later, but never after the run stops.
func (r *runner) opDeadline(t time.Time) time.Time {
	d := t.Add(r.cfg.OpTimeout)
	if d.After(r.stopAt) {
		return r.stopAt
	}
	return d
}

// halt ends the run: running operations fail at once and no connection
// opens any more.
func (r *runner) halt() {
	r.stopping.Store(true)
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	r.halted = true
	now := time.Now()
	for c := range r.live {
		c.SetDeadline(now)
	}
}

// track registers c so that halt can cut it; it reports false, and c must
// be closed, when the run has already ended.
func (r *runner) track(c net.Conn) bool {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	if r.halted {
		return false
	}
	r.live[c] = struct{}{}
	r.open.Add(1)
	return true
}

// closeConn closes a tracked connection.
func (r *runner) closeConn(c net.Conn) {
	r.liveMu.Lock()
	delete(r.live, c)
	r.liveMu.Unlock()
	r.open.Add(-1)
	c.Close()
}

// sleep pauses for d, or until the run ends; it reports whether the run
// is still going.
func (r *runner) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return !r.done()
	case <-r.ctx.Done():
		return false
	}
}

// addError counts err, which happened on connection conn, unless the run
// is ending (operations cut short then are not the server's fault).
func (r *runner) addError(conn int, err error) {
	if errors.Is(err, errStopped) {
		return
	}
	var mm *MismatchError
	isMismatch := errors.As(err, &mm)
	if r.done() && !isMismatch {
		return
	}
	k := classify(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs.add(k)
	switch {
	case isMismatch:
		if r.firstMM == nil {
			r.firstMM = mm
		}
	case r.firstErr == "":
		r.firstErr = fmt.Sprintf("%s: connection %d: %v", k, conn, err)
	}
}

// abort ends the run early with err, which Run returns.
func (r *runner) abort(err error) {
	r.mu.Lock()
	if r.fatal == nil {
		r.fatal = err
	}
	r.mu.Unlock()
	r.halt()
	r.stop()
}

// connect opens a connection for connection (connrate: worker) id, which
// counts in lat's second if it opens in the measured window, and
// does its prelude (the PROXY header, the greeting), retrying refused and timed-out connects
// until retryUntil; while none has ever succeeded, until noServerUntil
// instead, and after that (or at once for any other error) it ends the run
// with ErrNoServer. A server that has been reached once and then refuses is
// retried, or counted as an error, as the warmup says.
func (r *runner) connect(id int, lat *latencyRecorder) (net.Conn, error) {
	backoff := retryBackoff
	for {
		if r.done() {
			return nil, errStopped
		}
		select {
		case r.dialSem <- struct{}{}:
		case <-r.ctx.Done():
			return nil, errStopped
		}
		ap := r.addr.Load()
		addr := *ap
		ctx, cancel := context.WithDeadline(r.ctx, r.opDeadline(time.Now()))
		c, err := r.dial(ctx, addr)
		cancel()
		<-r.dialSem
		if err == nil {
			if !r.track(c) {
				c.Close()
				return nil, errStopped
			}
			r.connects.Add(1)
			if lat != nil && r.inWindow(time.Now()) {
				lat.addConnect() // in the second it opened in
			}
			r.countTLS(c)
			if ap == &r.cfg.Addr {
				resolved := r.reached(c)
				r.addr.CompareAndSwap(ap, &resolved)
			}
			if err := r.prelude(c, id); err != nil {
				r.closeConn(c)
				return nil, err
			}
			return pollReads(c, r.cfg.BusyPoll), nil
		}
		if r.done() {
			return nil, errStopped
		}
		now := time.Now()
		k := classify(err)
		retryable := k == KindRefused || k == KindTimeout
		neverConnected := r.connects.Load() == 0
		until := r.retryUntil
		if neverConnected {
			until = r.noServerUntil
		}
		if retryable && now.Before(until) {
			r.retries.Add(1)
			if !r.sleep(backoff) {
				return nil, errStopped
			}
			backoff = min(2*backoff, maxRetryBackoff)
			continue
		}
		if neverConnected {
			r.abort(r.noServerError(now, err))
			return nil, errStopped
		}
		return nil, err
	}
}

// noServerError describes a run that could not open any connection: err
// is the last connect's error, at now.
func (r *runner) noServerError(now time.Time, err error) error {
	if r.retries.Load() == 0 {
		return fmt.Errorf("%w to %s: %w", ErrNoServer, r.cfg.Addr, err)
	}
	return fmt.Errorf("%w to %s in %v: %w", ErrNoServer, r.cfg.Addr, now.Sub(r.start).Round(10*time.Millisecond), err)
}

// totals sums the workers' counters.
type totals struct {
	messages, bytes, connects int64
}

func (r *runner) totals() totals {
	var t totals
	for _, w := range r.workers {
		t.messages += w.messages.Load()
		t.bytes += w.bytes.Load()
	}
	t.connects = r.connects.Load()
	return t
}

func (r *runner) errorCount() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs.Total()
}

// begin starts the run's clock: the warmup from now, then the measured
// window, and the moment, linger after the window (or parent's deadline,
// if sooner), when the run is stopped (r.ctx ends, halt). The function it
// returns lets go of the clock's context.
func (r *runner) begin(parent context.Context, linger time.Duration) func() {
	r.start = time.Now()
	r.measureStart = r.start.Add(r.cfg.Warmup)
	r.end = r.measureStart.Add(r.cfg.Duration)
	r.retryUntil = r.measureStart
	// Within the first half of a short run, so that a run that never
	// connects ends with ErrNoServer, not as one that measured nothing.
	r.noServerUntil = r.start.Add(min(noServerWait, r.end.Sub(r.start)/2))
	r.stopAt = r.end.Add(linger)
	if d, ok := parent.Deadline(); ok && d.Before(r.stopAt) {
		r.stopAt = d
	}
	ctx, cancel := context.WithDeadline(parent, r.stopAt)
	r.ctx, r.stop = ctx, cancel
	stopHalt := context.AfterFunc(ctx, r.halt)
	return func() {
		stopHalt()
		cancel()
	}
}

// run runs the workers and measures.
func (r *runner) run(parent context.Context) (*Result, error) {
	cfg := r.cfg
	defer r.begin(parent, endGrace)()
	if cfg.Mode == ModeIdle {
		// Idle connections are counted and timed from the start: opening
		// them is what is measured.
		r.measureStart = r.start
		r.retryUntil = r.end
	}

	res := &Result{Mode: cfg.Mode, Addr: cfg.Addr, Conns: cfg.Conns, Warmup: cfg.Warmup.Seconds(), Duration: cfg.Duration.Seconds(),
		BusyPoll: float64(cfg.BusyPoll) / float64(time.Microsecond)}
	if cfg.Proxy != nil {
		res.Proxy = fmt.Sprintf("v%d", cfg.Proxy.Version)
	}
	switch cfg.Mode {
	case ModePingPong:
		res.Size, res.Pipeline, res.Rate = cfg.Size, cfg.Pipeline, cfg.Rate
	case ModeStream:
		res.Chunk = cfg.Chunk
	case ModeConnRate:
		res.Size, res.Parts, res.Rate = cfg.partsLen(), len(cfg.Parts), cfg.Rate
	}
	var srv *ServerStats
	if cfg.ServerPID != 0 {
		srv = &ServerStats{PID: cfg.ServerPID}
		res.Server = srv
		if cfg.Mode == ModeIdle {
			rss, err := ProcessRSS(cfg.ServerPID)
			if err != nil {
				return nil, fmt.Errorf("bench: server pid %d: %w", cfg.ServerPID, err)
			}
			srv.RSSBefore = rss
		}
	}

	// The measured window runs from measureStart (idle: the start) to
	// end, or to the moment the run was interrupted. Echoes count in it by
	// when they were verified (worker.completed); the connections opened
	// and the CPU times are read at its two ends.
	var before totals
	var cpuBefore cpuSample
	if cfg.Mode == ModeIdle {
		cpuBefore = sampleCPU(cfg.ServerPID)
	}
	if cfg.Rate > 0 {
		r.pacer = newPacer(cfg.Rate, cfg.Conns, r.measureStart)
		defer r.pacer.close()
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	r.startWorkers(&wg, res)
	seconds := &sampler{r: r}
	wg.Go(seconds.runSeconds)
	if cfg.Progress != nil {
		wg.Go(r.reportProgress)
	}
	measuring := true
	if cfg.Mode != ModeIdle {
		measuring = r.waitUntil(r.measureStart)
		if measuring {
			before = r.totals()
			if cfg.Mode != ModeConnRate {
				res.OpenAtStart = r.open.Load()
			}
			cpuBefore = sampleCPU(cfg.ServerPID)
		}
		t0 = time.Now()
	}
	finished := r.waitUntil(r.end)
	// The figures are read while the load still runs and every connection
	// is open; only then does the run stop. (A server that forks per
	// connection would otherwise lose the CPU time of children that exit
	// before it reaps them.)
	cut := time.Now()
	sampled := cut.Sub(t0)
	after := r.totals()
	var cpuAfter cpuSample
	if measuring {
		cpuAfter = sampleCPU(cfg.ServerPID)
		if srv != nil && cfg.Mode == ModeIdle {
			srv.RSSHeld, _ = ProcessRSS(cfg.ServerPID)
		}
	}
	r.halt()
	r.stop()
	close(r.sampled)
	wg.Wait()
	seconds.finish(cut, after)

	r.mu.Lock()
	fatal := r.fatal
	r.mu.Unlock()
	if fatal != nil {
		return nil, fatal
	}

	// The window's length: the whole Duration, or up to the interruption.
	var elapsed time.Duration
	switch {
	case !measuring:
		sampled, after = 0, before
		res.WarmupElapsed = cut.Sub(r.start).Seconds()
	case finished:
		elapsed = r.end.Sub(r.measureStart)
	default:
		elapsed = max(cut.Sub(r.measureStart), 0)
	}
	if measuring && cfg.Mode != ModeIdle {
		res.WarmupElapsed = r.measureStart.Sub(r.start).Seconds()
	}
	res.Interrupted = !finished
	res.Elapsed = elapsed.Seconds()
	for _, w := range r.workers {
		res.Messages += w.measured.messages
		res.Bytes += w.measured.bytes
	}
	res.Connects = r.connects.Load()
	res.ConnectRetries = r.retries.Load()
	res.TLS = r.tlsStats()
	if elapsed > 0 {
		s := elapsed.Seconds()
		res.MessagesPerSec = float64(res.Messages) / s
		res.MBPerSec = float64(res.Bytes) / s / 1e6
	}
	if sampled > 0 {
		res.ConnsPerSec = float64(after.connects-before.connects) / sampled.Seconds()
	}
	if measuring {
		cpuFigures(res, srv, cpuBefore, cpuAfter, sampled, after.connects-before.connects)
	}
	if srv != nil && cfg.Mode == ModeIdle && res.Held > 0 && srv.RSSHeld > 0 {
		srv.BytesPerConn = float64(srv.RSSHeld-srv.RSSBefore) / float64(res.Held)
	}

	if err := r.settle(res, seconds); err != nil {
		return res, err
	}
	if cfg.Mode == ModePingPong || cfg.Mode == ModeStream {
		switch {
		case cfg.Warmup > 0 && res.OpenAtStart < int64(cfg.Conns):
			return res, fmt.Errorf("%w: only %d of the %d connections were open when measuring began: the server accepted them too slowly for a %v warmup",
				ErrRunFailed, res.OpenAtStart, cfg.Conns, cfg.Warmup)
		case cfg.Warmup == 0 && res.Connects < int64(cfg.Conns):
			// With no warmup they open while measuring: all of them must.
			return res, fmt.Errorf("%w: only %d of the %d connections opened in the %s measured, with no warmup",
				ErrRunFailed, res.Connects, cfg.Conns, elapsed.Round(time.Millisecond))
		}
	}
	if cfg.Mode != ModeIdle && res.Messages == 0 {
		err := fmt.Errorf("%w: no echo completed in the %s measured", ErrRunFailed, elapsed.Round(time.Millisecond))
		if res.Errors.Total() == 0 && cfg.OpTimeout >= cfg.Warmup+cfg.Duration {
			// A server that takes everything and sends nothing back.
			err = fmt.Errorf("%w, and none failed: an operation counts as a timeout only after the operation timeout, %s, and the run was shorter", err, echo.FormatDuration(cfg.OpTimeout))
		}
		return res, err
	}
	if cfg.Mode == ModeIdle && res.Held < cfg.Conns {
		why := "opening them took longer than the run"
		if unchecked := res.Connects - int64(res.Held) - res.Errors.Total(); unchecked > 0 {
			why = fmt.Sprintf("%d opened, but their one-byte echo had not come back when the run ended (an operation counts as a timeout only after the operation timeout, %s)",
				unchecked, echo.FormatDuration(cfg.OpTimeout))
		}
		return res, fmt.Errorf("%w: held %d of %d connections: %s", ErrRunFailed, res.Held, cfg.Conns, why)
	}
	return res, nil
}

// cpuFigures sets res's load CPU, and with srv the server's, from the
// samples taken at the two ends of the measured window, sampled apart,
// over its echoes and the conns connections opened in it.
func cpuFigures(res *Result, srv *ServerStats, before, after cpuSample, sampled time.Duration, conns int64) {
	if load, ok := after.loadSince(before); ok && sampled > 0 {
		res.LoadCPU = load.Seconds()
		res.LoadCPUPercent = 100 * load.Seconds() / sampled.Seconds()
	}
	cpu, system, ok := after.serverSince(before)
	if srv == nil || !ok {
		return
	}
	srv.CPU = cpu.Seconds()
	srv.SystemCPU = system.Seconds()
	if res.Messages > 0 {
		srv.CPUPerMessage = float64(cpu.Microseconds()) / float64(res.Messages)
	}
	if res.Bytes > 0 {
		srv.CPUPerGB = cpu.Seconds() / (float64(res.Bytes) / 1e9)
	}
	if conns > 0 {
		srv.CPUPerConn = float64(cpu.Microseconds()) / float64(conns)
	}
}

// interruptedError says how much of the run was done when it was
// interrupted.
func interruptedError(res *Result) error {
	if res.Mode != ModeIdle && res.Elapsed == 0 {
		return fmt.Errorf("%w in the warmup, after %s of %s: nothing was measured", ErrInterrupted, seconds(res.WarmupElapsed), seconds(res.Warmup))
	}
	return fmt.Errorf("%w after %s of the %s to measure", ErrInterrupted, seconds(res.Elapsed), seconds(res.Duration))
}

// waitUntil waits for t or the end of the run; it reports whether t came
// first.
func (r *runner) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return r.ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// startWorkers starts the goroutines of cfg.Mode.
func (r *runner) startWorkers(wg *sync.WaitGroup, res *Result) {
	n := r.cfg.Conns
	if r.cfg.Mode == ModeIdle {
		n = min(n, maxDialers)
	}
	r.workers = make([]*worker, n)
	for i := range r.workers {
		r.workers[i] = newWorker(r, i)
	}
	if r.cfg.Mode == ModeIdle {
		wg.Go(func() { r.runIdle(res) })
		return
	}
	for _, w := range r.workers {
		wg.Go(w.run)
	}
}

// reportProgress calls cfg.Progress once a second until the run ends.
func (r *runner) reportProgress() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prev, prevT := r.totals(), time.Now()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-tick.C:
			if r.done() {
				return
			}
			cur := r.totals()
			s := now.Sub(prevT).Seconds()
			r.cfg.Progress(Progress{
				Elapsed:        now.Sub(r.start),
				Warmup:         now.Before(r.measureStart),
				Open:           r.open.Load(),
				Messages:       cur.messages,
				Bytes:          cur.bytes,
				Errors:         r.errorCount(),
				MessagesPerSec: float64(cur.messages-prev.messages) / s,
				MBPerSec:       float64(cur.bytes-prev.bytes) / s / 1e6,
				ConnsPerSec:    float64(cur.connects-prev.connects) / s,
			})
			prev, prevT = cur, now
		}
	}
}

// summary lists the non-zero counts: "3 timeout, 1 reset".
func (e ErrorCounts) summary() string {
	var parts []string
	for _, kv := range []struct {
		k ErrorKind
		n int64
	}{{KindMismatch, e.Mismatch}, {KindTimeout, e.Timeout}, {KindReset, e.Reset}, {KindRefused, e.Refused}, {KindOther, e.Other}} {
		if kv.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", kv.n, kv.k))
		}
	}
	return strings.Join(parts, ", ")
}

// settle fills in res's latencies (from the run's histogram and its
// seconds) and errors, as every mode and transport reports them, and
// returns the error that ends the run for them: the first mismatch, the
// interruption, or the errors counted; nil when there are none.
func (r *runner) settle(res *Result, seconds *sampler) error {
	res.Latency = summarize(r.hist)
	res.Seconds = seconds.seconds
	res.LatencyCurve = percentileCurve(r.hist)
	res.hist = r.hist
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Errors = r.errs
	res.FirstError = r.firstErr
	res.Greetings = r.greetings
	if mm := r.firstMM; mm != nil {
		res.FirstMismatch = describeMismatch(mm)
		return mm
	}
	if res.Interrupted {
		return interruptedError(res)
	}
	if n := r.errs.Total(); n > 0 {
		return fmt.Errorf("%w: %s (first %s)", ErrRunFailed, r.errs.summary(), r.firstErr)
	}
	return nil
}

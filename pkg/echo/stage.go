package echo

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stages: behaviour added to the connections of a listener, written once
// and run by both engines (engineFor).
//
// A stage is one of two kinds, each a factory that a listener's chain
// holds and that makes, for each connection, the state the stage keeps
// for it. The chain is resolved once per listener (newListenerConf,
// listener_options.go): the PROXY protocol stage (proxy.go) first on a
// listener whose ListenerOptions ask for it, then the Server's stages
// (Server.stages), then the listener's fault stage (fault_stage.go) when
// it has faults; each connection points to its listener's (conn.lconf).
//
//   - an openStage acts once, when the connection opens, before any echo:
//     it may read bytes from the peer that are not to be echoed (a PROXY
//     protocol header), within a size and a time it bounds, and then
//     write a line to the peer (a greeting naming the backend, which may
//     tell what the header said);
//   - a writeStage acts on each write back: for what is left of the chunk
//     being echoed it says how many bytes to write next and how long to
//     wait before writing them, which is enough to delay an echo, cut it
//     into slices or pace it to a rate. Several write stages run in a row,
//     each seeing the piece the one before it chose (as toxiproxy's toxics
//     do): the piece written is the last one's, after the sum of the
//     waits. Its pacer may also be a rewriter, which changes a chunk
//     before any of it is written (a flipped bit), and an ender, which
//     ends the connection instead of echoing on (an ending: a close
//     after FIN, a reset, a stall), asked when the stages start, before
//     each read and each piece, and when its deadline passes; the faults
//     (fault_stage.go) are such a stage.
//
// A stage never touches a socket, a deadline or a goroutine: it is pure
// decision, called by the engine that serves the connection, on that
// engine's goroutine (the connection's own, or its event loop), never
// concurrently for one connection. Each engine does the I/O the same way:
//
//   - the goroutine engine (goConn, goconn.go) bounds a header read with
//     a read deadline, writes the greeting and the pieces with its
//     blocking writes, and sleeps out the waits on a timer that Shutdown
//     and Close cut short (stageRun.sleep). On TLS it runs them inside
//     TLS, after the handshake (listenerConf.tlsStages), except the PROXY
//     stage, which comes before it as balancers send it: proxyFirst runs
//     that stage's opener on the connection below TLS, with the same
//     openRead, and the handshake then reads first what came after the
//     header (headConn).
//   - an event loop (loop_stage_linux.go) never blocks: it writes what the
//     socket takes and keeps the rest as it keeps any write back (pending),
//     and for a wait it holds the chunk and puts the connection in its
//     timer heap (loopTimers), which sets how long epoll_wait may sleep;
//     when the time comes it writes the next piece. Header bytes arrive in
//     pieces: each read is handed to the opener until it says it is done.
//
// An ending is acted on the same way by both (goConn.end, loop.endNow):
// a close sends FIN and discards what the peer still sends for up to
// drainLinger (a goroutine blocking in lingerClose, a loop with shutWrite,
// discard and a timer); a reset sets SO_LINGER 0 and closes; a stall
// stops reading and writing (a goroutine waits for the idle timeout,
// Shutdown or Close; a loop watches no event and leaves it to its idle
// sweep). The goroutine engine wakes for an ending's deadline with its
// read deadline (armEnd), a loop with its timer heap. The connection
// closes with reason CloseFault.
//
// Both keep the seed's order and back-pressure: nothing more is read from
// a connection until the whole echo of its last read (or its greeting) is
// written, however long its stages hold it, so a stage slows only its own
// connection. Time held by a stage is not the peer's stall: the idle and
// write timeouts count from when the held bytes are written. Shutdown's
// deadline ends the waits: what is held is then written at once, as any
// echo owed. The observer sees an echoed chunk once, whole, when its last
// piece is written (conn.sent); the greeting and a header are not echoes
// and are not reported to it.
//
// With no stage (Server.stages nil, no PROXY listener and no faults, the
// default) nothing of this runs: each engine tests one nil pointer per chunk
// (loopConn.run, goConn.run). A loop connection's pointer to its stages
// fits in the size class it had before stages came (192 bytes, with the
// timeouts read from the Server rather than kept in each connection).
//
// An opener whose read is cut short, by its time bound or by the peer's
// end of stream or a failed read while it still reads, may say why the
// connection closes (a cutShorter: a PROXY header that did not come
// whole); both engines ask stageRun.cutShort. While open stages read,
// their own time bound applies, not the idle timeout.
//
// To add a stage: write a type implementing openStage or writeStage (and
// its per-connection opener or pacer) in a file named for it, decide
// nothing about engines in it, and append it to Server.stages where the
// Server is configured, or, for a per-listener one, to the chain
// newListenerConf resolves from its ListenerOptions. Test it on both engines with the variants table
// (stage_test.go shows how, with the trivial stages of
// stage_export_test.go).
//
// Server.stages is unexported, and so are these interfaces: the stages
// live in this package (a stage reads the connection's policy, conn), and
// what users set is the behaviour, not the chain — a Server field per
// feature (a greeting template, faults) or a per-listener option
// (ListenerOptions.ProxyProtocol) that appends its stage. Exporting the
// chain would freeze this contract before the stages that need it
// (issues 16 and 17) have tried it.

// An openStage acts once on each connection, when it opens.
type openStage interface {
	// open returns the stage's state for a new connection c (named, with
	// its peer, and admitted); it may return nil to leave c alone.
	open(c *conn) opener
}

// An opener is an open stage's state for one connection. While reading
// reports a positive limit, the engine hands the bytes it reads to take
// instead of echoing them, as they arrive (a header may come in several
// pieces), and closes the connection if take fails or if within has
// passed since the connection opened; then it writes greeting(), whole,
// before any echo. Open stages run in order: the second reads once the
// first is done, and their greetings are written one after the other.
type opener interface {
	// greeting returns what to write to the peer before any echo, once
	// every open stage has read what it wanted; nil for nothing.
	greeting() []byte
	// reading reports how many bytes at most the stage still wants to
	// read from the peer (0: none, the echo may start), and how long
	// after the connection opened it may take them (0: no bound of its
	// own).
	reading() (limit int, within time.Duration)
	// take consumes p, the bytes just read (at most the limit). It
	// returns how many of them were the stage's, keeping what it needs of
	// them (p is the engine's buffer); the rest, once reading reports 0,
	// is the start of the echo. An error closes the connection (it is
	// logged as the reason).
	take(p []byte) (used int, err error)
}

// A writeStage acts on each chunk a connection writes back.
type writeStage interface {
	// pacer returns the stage's state for a new connection c; it may
	// return nil to leave c alone.
	pacer(c *conn) pacer
}

// A pacer is a write stage's state for one connection.
type pacer interface {
	// next is called before each piece of a chunk is written: rest is
	// how many bytes of the chunk are left (all of it when first), the
	// length of the piece the stage before it chose. It returns how many
	// of them to write now (1 to rest; more is taken as rest) and how
	// long to wait before writing them. From Shutdown's deadline on
	// (unpaced) its wait is ignored, and it should cut the piece only
	// where an ending of its falls due (an ender's byte count): what is
	// owed goes in as few writes as the socket takes, and the endings
	// stay exact.
	next(rest int, first, unpaced bool) (n int, wait time.Duration)
}

// An ending is what a write stage may make its connection do instead of
// echoing on (the faults of faults.go). Each engine acts on it the same
// way, and the connection closes with reason CloseFault.
type ending uint8

const (
	endNone ending = iota
	// endClose: write nothing more of the chunk, send FIN, discard what
	// the peer still sends, for up to drainLinger, and close.
	endClose
	// endReset: close at once with an RST (SO_LINGER 0), writing
	// nothing more.
	endReset
	// endStall: neither read nor write again, and keep the connection
	// open, until the idle timeout, Shutdown's deadline or Close.
	endStall
)

// An ender is a pacer that may end its connection. The engines ask it
// when the stages start, before each read, before each piece of a chunk
// (mid) and, if it has a deadline, when that passes; its answer stands
// once it is not endNone.
type ender interface {
	// ending reports what the connection must do now; mid is set
	// between the pieces of a chunk (what was written of it so far is
	// all the peer gets of it if the connection ends there).
	ending(mid bool) ending
	// endAt returns when an ending is due whatever the bytes, so that
	// the engine wakes for it (zero: never).
	endAt() time.Time
}

// A rewriter is a pacer that may change a chunk before any of it is
// written (it flips a bit of it, say): the engine hands it the chunk, in
// a buffer the connection owns, once.
type rewriter interface {
	rewrite(p []byte)
}

// A slicingPacer is a pacer that may cut chunks into pieces meant to go out one
// by one (slices): the engine then has the socket take a piece only once
// the one before has left it (sendOneByOne), instead of appending them to
// the send queue of a peer that does not read, a system call a byte.
type slicingPacer interface {
	slices() bool
}

// stages is a Server's chain of stages, in the order they apply: all the
// open stages, in order, then the write stages on each chunk, in order.
type stages struct {
	open  []openStage
	write []writeStage
}

// stageRun is one connection's stages at work: its openers and pacers and
// where the current chunk is in them. Both engines drive it the same way;
// a connection has one only if the Server has stages.
type stageRun struct {
	openers []opener
	pacers  []pacer
	openBy  time.Time // when the open stages must be done (zero: no bound)

	// enders and rewriters are the pacers that are also enders or
	// rewriters, in order; nil when none is.
	enders    []ender
	rewriters []rewriter
	ended     ending // what an ender decided (endNone: echoing on)
	slices    bool   // a pacer slices: see slicingPacer

	piece  int   // bytes of the current piece still to write; 0: ask next
	first  bool  // the next piece is the chunk's first
	due    int64 // a loop's: when the held piece may be written (loop clock; 0: not held)
	greets bool  // the chunk being written is the greeting, not an echo

	// early is, on a loop, the start of the echo read with the end of a
	// header: it is echoed once the greeting is written.
	early []byte

	// timerAt is, on a loop, where each kind of its timers is in the
	// loop's heap, plus one (0: none; loopTimers).
	timerAt [timerKinds]int32

	// wake, for the goroutine engine, is closed when Shutdown or Close
	// should end its waits (stop).
	wake     chan struct{}
	stopOnce sync.Once
	// unpaced is set from Shutdown's deadline on (stop on goroutines,
	// loop.stop on a loop): next gives the rest of a chunk whole, with no
	// wait, so that what is owed goes in as few writes as the socket
	// takes. Sliced a byte at a time, a full receive queue took one
	// system call a byte, and seconds past the deadline.
	unpaced atomic.Bool
}

// A timerKind is what an event loop's timer of a connection's stages is
// for (loopTimers, loop_stage_linux.go).
type timerKind uint8

const (
	timerPiece  timerKind = iota // a held piece may be written (stageRun.due)
	timerOpen                    // the time bound of the open stages (stageRun.openBy)
	timerEnd                     // an ending of the stages due by time (ender.endAt)
	timerLinger                  // the bound of an ending's lingering close (endClose)
	timerKinds
)

// newStageRun returns a connection's stages before they start: the
// goroutine engine makes it when it accepts the connection, so that
// Shutdown and Close can end its waits from then on.
func newStageRun() *stageRun { return &stageRun{wake: make(chan struct{})} }

// start starts s's stages on c, opened at now, in r, and reports whether
// any applies. c is named and admitted.
func (s *stages) start(r *stageRun, c *conn, now time.Time) bool {
	for _, st := range s.open {
		if o := st.open(c); o != nil {
			r.openers = append(r.openers, o)
			if _, within := o.reading(); within > 0 {
				if by := now.Add(within); r.openBy.IsZero() || by.Before(r.openBy) {
					r.openBy = by
				}
			}
		}
	}
	for _, st := range s.write {
		if p := st.pacer(c); p != nil {
			r.pacers = append(r.pacers, p)
			if e, ok := p.(ender); ok {
				r.enders = append(r.enders, e)
			}
			if w, ok := p.(rewriter); ok {
				r.rewriters = append(r.rewriters, w)
			}
			if sl, ok := p.(slicingPacer); ok && sl.slices() {
				r.slices = true
			}
		}
	}
	return len(r.openers) > 0 || len(r.pacers) > 0
}

// reset empties a loop's stageRun of a closed connection for the next
// one (loop.close), keeping the room its openers and pacers had; enders
// and rewriters stay nil when none is, as start leaves them.
func (r *stageRun) reset() {
	clear(r.openers)
	clear(r.pacers)
	*r = stageRun{openers: r.openers[:0], pacers: r.pacers[:0]}
}

// greeting returns what the open stages write first, in order.
func (r *stageRun) greeting() []byte {
	var g []byte
	for _, o := range r.openers {
		g = append(g, o.greeting()...)
	}
	return g
}

// reading reports how much the first open stage still reading wants
// (0: the echo may start).
func (r *stageRun) reading() int {
	for _, o := range r.openers {
		if limit, _ := o.reading(); limit > 0 {
			return limit
		}
	}
	return 0
}

// take hands p, just read, to the open stages still reading, in order,
// and returns what is left of it for the echo.
func (r *stageRun) take(p []byte) ([]byte, error) {
	for _, o := range r.openers {
		for len(p) > 0 {
			limit, _ := o.reading()
			if limit <= 0 {
				break
			}
			used, err := o.take(p[:min(limit, len(p))])
			if err != nil {
				return nil, err
			}
			p = p[min(max(used, 0), len(p)):]
			if used <= 0 {
				break
			}
		}
	}
	return p, nil
}

// cutShort returns the error that closes a connection whose open stages
// are still reading when its read ends for cause: os.ErrDeadlineExceeded
// once their time bound has passed, io.EOF when the peer ended the
// stream, or the failed read's error. It is the first reading stage's, if
// it says (a cutShorter), else nil: the engine then closes the connection
// for cause, as any other.
func (r *stageRun) cutShort(cause error) error {
	for _, o := range r.openers {
		if limit, _ := o.reading(); limit > 0 {
			if c, ok := o.(cutShorter); ok {
				return c.cutShort(cause)
			}
			break
		}
	}
	return nil
}

// A cutShorter is an opener that may say why its connection closes when
// its read ends before it is done (a PROXY header that did not come
// whole: proxy.go); nil leaves it to the cause.
type cutShorter interface {
	cutShort(cause error) error
}

// startChunk readies the pacers for p, a chunk to write, which the
// rewriters may change in place.
func (r *stageRun) startChunk(p []byte) {
	r.first, r.piece = true, 0
	for _, w := range r.rewriters {
		w.rewrite(p)
	}
}

// ending asks the enders, in order, whether the connection must end now
// (mid: between two pieces of a chunk); once one says so, it stands.
func (r *stageRun) ending(mid bool) ending {
	if r.ended != endNone {
		return r.ended
	}
	for _, e := range r.enders {
		if end := e.ending(mid); end != endNone {
			r.ended = end
			return end
		}
	}
	return endNone
}

// endAt returns the earliest deadline of the enders (zero: none).
func (r *stageRun) endAt() time.Time {
	var at time.Time
	for _, e := range r.enders {
		if t := e.endAt(); !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	return at
}

// next asks the pacers, in order, for the next piece of what is left of
// the chunk, rest bytes: its length and the wait before it; once unpaced,
// with no wait, and cut only where an ending falls due.
func (r *stageRun) next(rest int) (n int, wait time.Duration) {
	n = rest
	unpaced := r.unpaced.Load()
	for _, p := range r.pacers {
		m, w := p.next(n, r.first, unpaced)
		n = min(max(m, 1), n)
		wait += max(w, 0)
	}
	r.first = false
	if unpaced {
		wait = 0
	}
	return n, wait
}

// stop ends the goroutine engine's waits (Shutdown's deadline, Close).
func (r *stageRun) stop() {
	r.unpaced.Store(true)
	r.stopOnce.Do(func() { close(r.wake) })
}

// sleep waits d, or less if stop is called, and reports whether it
// waited in full. Once stopped it returns false at once.
func (r *stageRun) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.wake:
		return false
	}
}

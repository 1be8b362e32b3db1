package echo

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// acceptLogInterval is the least time between two log lines about failing
// accepts: under descriptor exhaustion Accept fails as fast as it is
// called, and the log must not become the next thing to fill up.
const acceptLogInterval = time.Second

// acceptBackoff is one listener's state after transient accept errors
// (running out of descriptors, say): how long to pause before accepting
// again, growing from 5ms to 1s, and how many errors since the last
// success. Serve's accept loop and each event loop keep one per listener;
// its zero value is ready.
type acceptBackoff struct {
	delay    time.Duration
	failures int       // accept errors since the last success
	failedAt time.Time // when the first of them happened
}

// failed counts a transient accept error on listener, reports it
// (acceptFailedReport) and returns how long to pause before accepting
// again.
func (b *acceptBackoff) failed(s *Server, listener string, err error) time.Duration {
	if b.failures == 0 {
		b.failedAt = time.Now()
	}
	b.failures++
	b.delay = nextAcceptDelay(b.delay)
	s.acceptFailedReport(listener, err, b.delay)
	return b.delay
}

// accepted notes an accept that succeeded, logging that listener accepts
// again if errors came before it (acceptRecovered).
func (b *acceptBackoff) accepted(s *Server, listener string) {
	if b.failures > 0 {
		s.acceptRecovered(listener, b.failures, b.failedAt)
		b.failures = 0
	}
	b.delay = 0
}

func nextAcceptDelay(delay time.Duration) time.Duration {
	if delay == 0 {
		return 5 * time.Millisecond
	}
	return min(2*delay, time.Second)
}

// acceptPause pauses Serve's accept loop for delay after an accept error,
// or less if the server shuts down meanwhile.
func (s *Server) acceptPause(delay time.Duration) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.res.doneChan():
	}
}

// acceptFailedReport tells the Observer of a transient accept error and
// logs it at most once a second, saying how many errors went unlogged in
// between and that accepting resumes after delay.
func (s *Server) acceptFailedReport(listener string, err error, delay time.Duration) {
	if s.Observer != nil {
		s.Observer.AcceptError(listener, err)
	}
	if ok, suppressed := s.res.acceptWarn.allow(time.Now(), acceptLogInterval, s.reportAcceptErrors); ok {
		if e := s.Logger.Warn(); e != nil {
			msg := fmt.Sprintf("accept error: %v; retrying in %v", err, delay)
			if suppressed > 0 {
				msg += fmt.Sprintf(" (%d more since the last report)", suppressed)
			}
			e.Str("logger", "main").Str("listener", listener).Err(err).
				Dur("retry_in", delay).Int("errors_unlogged", suppressed).Msg(msg)
		}
	}
}

// reportAcceptErrors logs that n accept errors went unlogged.
func (s *Server) reportAcceptErrors(n int) {
	s.Logger.Warn().Str("logger", "main").Int("errors_unlogged", n).
		Msgf("%d more accept errors since the last report", n)
}

// acceptRecovered logs, at info and at most once a second, that listener
// accepts again after failures errors that began at since.
func (s *Server) acceptRecovered(listener string, failures int, since time.Time) {
	if ok, _ := s.res.acceptInfo.allow(time.Now(), acceptLogInterval, nil); !ok {
		return
	}
	s.Logger.Info().Str("logger", "main").Str("listener", listener).Int("errors", failures).
		Msgf("accepting again after %d accept errors in %v", failures, time.Since(since).Round(time.Millisecond))
}

// isTransientAcceptError reports whether an accept error should be retried
// rather than ending Serve: descriptor exhaustion, aborted handshakes and
// memory pressure pass, and so does any net.Error that says it is
// temporary or a timeout, as net/http's Serve retries it (a wrapped
// listener's own errors); a closed listener does not.
func isTransientAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.ENOBUFS, syscall.ENOMEM, syscall.EPROTO, syscall.EPERM, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne interface {
		net.Error
		Temporary() bool
	}
	if errors.As(err, &ne) && ne.Temporary() {
		return true
	}
	var te net.Error
	return errors.As(err, &te) && te.Timeout()
}

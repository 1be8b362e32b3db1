package echo

import (
	"fmt"
	"time"
)

// acceptLogInterval is the least time between two log lines about failing
// accepts: under descriptor exhaustion Accept fails as fast as it is
// called, and the log must not become the next thing to fill up.
const acceptLogInterval = time.Second

// acceptFailed handles a transient accept error on listener: it reports
// it (acceptFailedReport) and pauses for delay, or less if the server
// shuts down meanwhile.
func (s *Server) acceptFailed(listener string, err error, delay time.Duration) {
	s.acceptFailedReport(listener, err, delay)
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
	if ok, suppressed := s.res.acceptWarn.allow(time.Now(), acceptLogInterval); ok {
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

// acceptRecovered logs, at info and at most once a second, that listener
// accepts again after failures errors that began at since.
func (s *Server) acceptRecovered(listener string, failures int, since time.Time) {
	if ok, _ := s.res.acceptInfo.allow(time.Now(), acceptLogInterval); !ok {
		return
	}
	s.Logger.Info().Str("logger", "main").Str("listener", listener).Int("errors", failures).
		Msgf("accepting again after %d accept errors in %v", failures, time.Since(since).Round(time.Millisecond))
}

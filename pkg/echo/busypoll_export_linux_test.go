package echo

import "sync/atomic"

// CountLoopTurns makes each of s's event loops count its turns (each time
// it goes round to look for events, whether it then blocks in epoll_wait
// or polls without blocking) and returns a function that reads the total
// over every loop. A loop asleep in epoll_wait does not turn; one busy
// polling turns thousands of times a second. Call it after s serves, so
// that its loops have started. For tests in package echo_test.
//
// It counts with an operation that puts itself back in the loop's queue
// each time the loop runs it, without waking the loop: the loop runs its
// queue once a turn.
func CountLoopTurns(s *Server) (turns func() int64) {
	var n atomic.Int64
	s.loops.mu.Lock()
	all := s.loops.all
	s.loops.mu.Unlock()
	for _, l := range all {
		var count func()
		count = func() {
			n.Add(1)
			l.mu.Lock()
			l.ops = append(l.ops, count)
			l.mu.Unlock()
		}
		l.do(count)
	}
	return n.Load
}

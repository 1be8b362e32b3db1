package echo

// StoppedConns reports how many of s's connections have stopped reading
// because Shutdown's context ended: what arrives from then on is no longer
// echoed (conn.stopReading, or its event loop's stop). For tests in
// package echo_test.
func StoppedConns(s *Server) int {
	n := 0
	s.forEachConn(func(c *conn) {
		if c.stopping.Load() {
			n++
		}
	})
	return n
}

// OpenConns reports how many connections s counts as open: those that
// Shutdown waits for. For tests in package echo_test that must know a
// connection is counted (the Observer hears of it before).
func OpenConns(s *Server) int {
	n := 0
	s.forEachConn(func(*conn) { n++ })
	return n
}

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

package echo

// ParkedConns reports how many of s's connections are parked: held with
// no goroutine (park_linux.go). For tests in package echo_test.
func ParkedConns(s *Server) int {
	n := 0
	s.forEachConn(func(c *conn) {
		if c.parked.Load() {
			n++
		}
	})
	return n
}

package echo

// WithoutLoops makes s serve every connection with a goroutine, as it
// does where event loops do not apply (loop_linux.go). For tests in
// package echo_test.
func WithoutLoops(s *Server) *Server {
	s.noLoops = true
	return s
}

// LoopConns reports how many of s's connections event loops serve.
func LoopConns(s *Server) int {
	n := 0
	s.forEachConn(func(c *conn) {
		if _, goroutine := c.io.(*goConn); !goroutine {
			n++
		}
	})
	return n
}

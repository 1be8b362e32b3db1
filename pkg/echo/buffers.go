package echo

import "sync"

// fastBufferSize is the size of the buffers used when no data is logged:
// large enough that bulk transfers move in few system calls.
const fastBufferSize = 64 << 10

// fastBuffers pools the fast path's buffers. A connection holds one only
// while it has data in hand, so idle connections cost no buffer at all.
var fastBuffers = sync.Pool{New: func() any {
	b := make([]byte, fastBufferSize)
	return &b
}}

// logsData reports whether the server logs each chunk it echoes (debug
// level), which needs the seed's BufferSize-sized reads.
func (s *Server) logsData() bool {
	e := s.Logger.Debug()
	if e == nil {
		return false
	}
	e.Discard()
	return true
}

package echo

import (
	"bytes"
	"fmt"
	"time"
)

// Trivial stages, for the tests of the stage seam (stage_test.go): they
// show what a stage is and prove that both engines run it.

// WithGreeting makes s write line to every connection when it opens.
func WithGreeting(s *Server, line string) *Server {
	s.stages = addStages(s.stages)
	s.stages.open = append(s.stages.open, greeter(line))
	return s
}

// WithLineHeader makes s read a header line, up to "\n", from every
// connection before echoing: at most limit bytes, within d.
func WithLineHeader(s *Server, limit int, d time.Duration) *Server {
	s.stages = addStages(s.stages)
	s.stages.open = append(s.stages.open, lineHeader{limit: limit, within: d})
	return s
}

// WithSlices makes s write each echo n bytes at a time, with d between
// the pieces.
func WithSlices(s *Server, n int, d time.Duration) *Server {
	s.stages = addStages(s.stages)
	s.stages.write = append(s.stages.write, slicer{n: n, gap: d})
	return s
}

func addStages(st *stages) *stages {
	if st == nil {
		return &stages{}
	}
	return st
}

// greeter is an open stage that writes a line.
type greeter string

func (g greeter) open(*conn) opener { return g }

func (g greeter) greeting() []byte            { return []byte(g) }
func (greeter) reading() (int, time.Duration) { return 0, 0 }
func (greeter) take(p []byte) (int, error)    { return 0, nil }

// lineHeader is an open stage that reads a line, not echoed.
type lineHeader struct {
	limit  int
	within time.Duration
}

func (h lineHeader) open(*conn) opener { return &lineReading{h: h} }

type lineReading struct {
	h    lineHeader
	got  []byte
	done bool
}

func (*lineReading) greeting() []byte { return nil }

func (r *lineReading) reading() (int, time.Duration) {
	if r.done {
		return 0, 0
	}
	return r.h.limit - len(r.got), r.h.within
}

func (r *lineReading) take(p []byte) (int, error) {
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		r.got, r.done = append(r.got, p[:i]...), true
		return i + 1, nil
	}
	r.got = append(r.got, p...)
	if len(r.got) >= r.h.limit {
		return len(p), fmt.Errorf("header longer than %d bytes", r.h.limit)
	}
	return len(p), nil
}

// slicer is a write stage that writes n bytes at a time, gap apart.
type slicer struct {
	n   int
	gap time.Duration
}

func (s slicer) pacer(*conn) pacer { return s }

func (s slicer) next(rest int, first, unpaced bool) (int, time.Duration) {
	if unpaced {
		return rest, 0
	}
	if first {
		return s.n, 0
	}
	return s.n, s.gap
}

// HasStages reports whether s, once serving, has any stage.
func HasStages(s *Server) bool {
	s.faults.Do(func() {}) // waits for Faults to be read
	return s.stages != nil || s.faultBase.Load() != nil
}

// WithGreetingEnv makes s read {hostname} and {env:NAME} of its Greeting
// from hostname and env rather than from the process.
func WithGreetingEnv(s *Server, hostname string, env map[string]string) *Server {
	s.greeting.env = &greetingEnv{
		hostname:  func() (string, error) { return hostname, nil },
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
	return s
}

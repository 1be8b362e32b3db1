package bench

import "time"

// cpuSample is the CPU time used so far by the server process, all of it
// and the kernel's part, and by this process, the load; ok flags say what
// could be read.
type cpuSample struct {
	server, serverSystem time.Duration
	serverOK             bool
	load                 time.Duration
	loadOK               bool
}

// sampleCPU reads the CPU time of server pid (none if pid is 0) and of
// this process.
func sampleCPU(pid int) cpuSample {
	var s cpuSample
	var err error
	s.load, err = selfCPU()
	s.loadOK = err == nil
	if pid != 0 {
		var serr error
		s.server, err = ProcessCPU(pid)
		s.serverSystem, serr = ProcessSystemCPU(pid)
		s.serverOK = err == nil && serr == nil
	}
	return s
}

// serverSince returns the server's CPU time, all and the kernel's part,
// from before to s.
func (s cpuSample) serverSince(before cpuSample) (cpu, system time.Duration, ok bool) {
	if !s.serverOK || !before.serverOK || s.server < before.server || s.serverSystem < before.serverSystem {
		return 0, 0, false
	}
	return s.server - before.server, s.serverSystem - before.serverSystem, true
}

// loadSince returns this process's CPU time from before to s.
func (s cpuSample) loadSince(before cpuSample) (time.Duration, bool) {
	if !s.loadOK || !before.loadOK || s.load < before.load {
		return 0, false
	}
	return s.load - before.load, true
}

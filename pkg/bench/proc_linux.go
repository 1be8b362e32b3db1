package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of the times in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what ProcessCPU needs from /proc/PID/stat.
type procStat struct {
	ppid int
	// self is utime+stime: the CPU time of the process's threads, live
	// and exited.
	self int64
	// children is cutime+cstime: that of the children it has waited for.
	children int64
	// system is stime+cstime: the part of self and children spent in
	// the kernel.
	system int64
}

// ticks is the process's CPU time and its waited-for children's, in
// clock ticks.
func (st procStat) ticks() int64 { return st.self + st.children }

// readProcStat parses /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(pid, b)
}

// parseProcStat parses the contents b of /proc/PID/stat. The command name
// (field 2) is in parentheses and may hold spaces or parentheses, so
// fields are counted from the last ')'.
func parseProcStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("bench: /proc/%d/stat: no command name", pid)
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("bench: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var st procStat
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("bench: /proc/%d/stat: ppid: %w", pid, err)
	}
	var t [4]int64
	for j, s := range f[11:15] {
		if t[j], err = strconv.ParseInt(s, 10, 64); err != nil {
			return procStat{}, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
	}
	st.self, st.children, st.system = t[0]+t[1], t[2]+t[3], t[1]+t[3]
	return st, nil
}

// ProcessCPU returns the CPU time, user and system, that process pid has
// used since it started, including its descendants: those still running
// and those it has waited for (a server that forks a process per
// connection, such as socat, is measured whole). The process's own time
// has the resolution of a clock tick, 10ms; each running descendant's is
// read in nanoseconds from /proc/PID/task/*/schedstat, where the kernel
// has it, since hundreds of children may each use less than a tick.
func ProcessCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	total := ticksToDuration(st.ticks())
	for _, child := range descendants(pid) {
		cs, err := readProcStat(child)
		if err != nil {
			continue // it exited meanwhile
		}
		if run, ok := threadsRuntime(child); ok {
			total += run + ticksToDuration(cs.children)
		} else {
			total += ticksToDuration(cs.ticks())
		}
	}
	return total, nil
}

// ProcessSystemCPU returns the part of the CPU time of process pid and of
// the children it has waited for that was spent in the kernel, with the
// resolution of a clock tick. The time of descendants still running, which
// ProcessCPU counts, is not in it.
func ProcessSystemCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	return ticksToDuration(st.system), nil
}

func ticksToDuration(t int64) time.Duration {
	return time.Duration(t) * time.Second / clockTicks
}

// threadsRuntime sums the time on CPU of the live threads of process pid,
// the first field of each /proc/PID/task/TID/schedstat.
func threadsRuntime(pid int) (time.Duration, bool) {
	files, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
	if err != nil || len(files) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return 0, false
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, false
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		total += time.Duration(ns)
	}
	return total, true
}

// descendants lists the processes below pid, found by scanning /proc. It
// returns nothing when pid has no children, which it checks first through
// /proc/PID/task/*/children where the kernel provides them.
func descendants(pid int) []int {
	if kids, ok := childrenFromTasks(pid); ok && len(kids) == 0 {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if st, err := readProcStat(p); err == nil {
			parent[p] = st.ppid
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// childrenFromTasks reads the direct children of pid from
// /proc/PID/task/*/children; ok is false when the kernel lacks that file.
func childrenFromTasks(pid int) (kids []int, ok bool) {
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "children"))
	if err != nil || len(tasks) == 0 {
		return nil, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			return nil, false
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				kids = append(kids, n)
			}
		}
	}
	return kids, true
}

// ProcessRSS returns the resident memory of process pid in bytes, from
// VmRSS in /proc/PID/status.
func ProcessRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("bench: /proc/%d/status: no VmRSS in kB", pid)
}

package main

import (
	"bufio"
	"debug/buildinfo"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// env is what benchrun found out about the machine and the tools.
type env struct {
	date        time.Time
	nproc       int
	cpuModel    string
	kernel      string
	goVersion   string // of the echoctl binary
	gnetVersion string
	python      string // resolved interpreter, "" if unavailable
	pythonVer   string
	socat       string // resolved path, "" if unavailable
	socatVer    string
	ulimitN     string
	pinned      bool
	pinNote     string
	loadBefore  string
	loadAfter   string
	wall        time.Duration
	wallNote    string
	// charts is the HTML page of charts beside the Markdown page, to link;
	// empty if none was written.
	charts string
}

func probeEnv(o *options) *env {
	e := &env{date: time.Now().UTC(), nproc: runtime.NumCPU()}
	e.cpuModel = cpuModel()
	e.kernel = strings.TrimSpace(output("uname", "-sr"))
	if bi, err := buildinfo.ReadFile(o.echoctl); err == nil {
		e.goVersion = bi.GoVersion
	}
	if bi, err := buildinfo.ReadFile(o.gnetecho); err == nil {
		for _, d := range bi.Deps {
			if d.Path == "github.com/panjf2000/gnet/v2" {
				e.gnetVersion = d.Version
			}
		}
	}
	if o.python != "" {
		if exe := strings.TrimSpace(output(o.python, "-c", "import sys; print(sys.executable)")); exe != "" {
			e.python = exe
			e.pythonVer = strings.TrimSpace(output(exe, "--version"))
		}
	}
	if o.socat != "" {
		if p, err := exec.LookPath(o.socat); err == nil {
			e.socat = p
			for l := range strings.Lines(output(p, "-V")) {
				if strings.HasPrefix(l, "socat version") {
					e.socatVer = strings.TrimSpace(l)
				}
			}
		}
	}
	e.ulimitN = strings.TrimSpace(output("sh", "-c", "ulimit -n"))
	e.pinNote = "no pinning: -pin=false"
	if o.pin {
		switch {
		case e.nproc < 2:
			e.pinNote = "no pinning: fewer than 2 CPUs"
		case exec.Command("taskset", "-c", "1", "true").Run() != nil:
			e.pinNote = "no pinning: taskset is missing or cannot pin to CPU 1"
		default:
			e.pinned = true
			e.pinNote = "server pinned to CPU 0, load to CPU 1 (taskset)"
		}
	}
	e.loadBefore = loadAverage()
	return e
}

// pinTo prefixes argv with taskset for cpu when pinning works.
func (e *env) pinTo(cpu string, argv []string) []string {
	if !e.pinned {
		return argv
	}
	return append([]string{"taskset", "-c", cpu}, argv...)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// loadAverage is the first three fields of /proc/loadavg: other work on
// the machine skews every figure, so the page records it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// output runs a command and returns its standard output, or "".
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return string(b)
}

package loadtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTick = 100

// ProcStats is what a process (or all PostgreSQL processes) spent during a
// run, read from /proc.
type ProcStats struct {
	CPUPerReqUS float64 `json:"cpu_per_request_us"`
	Cores       float64 `json:"cores"`
	RSSMiB      float64 `json:"rss_mib,omitempty"`
	PeakRSSMiB  float64 `json:"peak_rss_mib,omitempty"` // VmHWM: the process's highest RSS so far
}

type procSample struct {
	ok       bool
	cpu      time.Duration
	rss, hwm float64
	pids     map[string]time.Duration // per process, for a group of processes
}

// readProc samples pid's CPU time and memory; pid 0 samples nothing.
func readProc(pid int) procSample {
	if pid <= 0 {
		return procSample{}
	}
	cpu, ok := procCPU(strconv.Itoa(pid))
	if !ok {
		return procSample{}
	}
	s := procSample{ok: true, cpu: cpu}
	status, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[0], 64)
		switch k {
		case "VmRSS":
			s.rss = kb / 1024
		case "VmHWM":
			s.hwm = kb / 1024
		}
	}
	return s
}

// readPostgres sums the CPU time of every process named postgres: the
// database's share of the work (on a machine where only one cluster is
// busy).
func readPostgres() procSample {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	s := procSample{pids: map[string]time.Duration{}}
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || string(bytes.TrimSpace(comm)) != "postgres" {
			continue
		}
		if cpu, ok := procCPU(filepath.Base(d)); ok {
			s.pids[filepath.Base(d)] = cpu
			s.ok = true
		}
	}
	return s
}

// procCPU is utime+stime of a process, from /proc/<pid>/stat.
func procCPU(pid string) (time.Duration, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, false
	}
	// The command may hold spaces: fields start after its closing paren.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick, true
}

// since turns two samples into the figures of the run between them.
func (after procSample) since(before procSample, wall time.Duration, requests int) *ProcStats {
	if !after.ok || !before.ok {
		return nil
	}
	cpu := max(after.cpu-before.cpu, 0)
	if after.pids != nil {
		// A process started during the run counts whole; one that exited
		// during it is lost (hence a lower bound).
		cpu = 0
		for pid, c := range after.pids {
			cpu += c - before.pids[pid]
		}
	}
	p := &ProcStats{Cores: cpu.Seconds() / wall.Seconds(), RSSMiB: after.rss, PeakRSSMiB: after.hwm}
	if requests > 0 {
		p.CPUPerReqUS = float64(cpu.Microseconds()) / float64(requests)
	}
	return p
}

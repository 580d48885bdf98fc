package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is 100 on every Linux
// architecture Go supports (the kernel fixes it for user space), so no sysconf call is needed.
const clockTicks = 100

// ProcSample is one reading of a process's memory and CPU time.
type ProcSample struct {
	At     time.Time `json:"-"`
	T      float64   `json:"t_s"` // seconds since the run started
	RSSKiB int64     `json:"rss_kib"`
	CPUS   float64   `json:"cpu_s"` // user + system seconds since the process started
}

// readProc reads VmRSS from /proc/PID/status and utime+stime from /proc/PID/stat.
func readProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read server process status: %w", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				s.RSSKiB, _ = strconv.ParseInt(f[0], 10, 64)
			}
			break
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read server process stat: %w", err)
	}
	// The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad cpu times", pid)
	}
	s.CPUS = float64(ut+st) / clockTicks
	return s, nil
}

// sampler reads a process every interval in the background, keeping the series and the peak.
// readProcs is readProc summed over pids.
func readProcs(pids []int) (ProcSample, error) {
	var sum ProcSample
	for i, pid := range pids {
		p, err := readProc(pid)
		if err != nil {
			return p, err
		}
		if i == 0 {
			sum.At = p.At
		}
		sum.RSSKiB += p.RSSKiB
		sum.CPUS += p.CPUS
	}
	return sum, nil
}

type sampler struct {
	pids []int // summed: the nodes of one natter
	t0   time.Time
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	series  []ProcSample
	peakRSS int64
	err     error
}

// startSampler starts sampling pid; pid <= 0 returns nil, whose methods are no-ops.
func startSampler(pids []int, t0 time.Time, every time.Duration) (*sampler, error) {
	if len(pids) == 0 {
		return nil, nil
	}
	if _, err := readProcs(pids); err != nil {
		return nil, err
	}
	s := &sampler{pids: pids, t0: t0, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// sample takes one reading now, adds it to the series and returns it.
func (s *sampler) sample() (ProcSample, bool) {
	if s == nil {
		return ProcSample{}, false
	}
	p, err := readProcs(s.pids)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return p, false
	}
	p.T = p.At.Sub(s.t0).Seconds()
	s.series = append(s.series, p)
	s.peakRSS = max(s.peakRSS, p.RSSKiB)
	return p, true
}

func (s *sampler) close() {
	if s == nil {
		return
	}
	close(s.stop)
	<-s.done
}

func (s *sampler) snapshot() ([]ProcSample, int64) {
	if s == nil {
		return nil, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ProcSample(nil), s.series...), s.peakRSS
}

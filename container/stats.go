package container

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"berth/container/spec"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// ContainerStats samples the container's cgroup and network counters. The
// CPU percentage needs two samples: the previous one is the one taken by
// the last call, or one taken now and a moment before when there is none.
func (s *Service) ContainerStats(ctx context.Context, name string) (container.StatsResponse, error) {
	e, err := s.lookup(name)
	if err != nil {
		return container.StatsResponse{}, err
	}
	e.mu.Lock()
	rec := e.rec
	prev := e.lastStats
	e.mu.Unlock()
	if !rec.State.IsRunning() {
		return container.StatsResponse{ID: rec.ID, Name: rec.Name, OSType: "linux"}, nil
	}
	if prev == nil || time.Since(prev.Read) > 5*time.Second {
		first := s.sample(&rec)
		prev = &first
		select {
		case <-ctx.Done():
			return container.StatsResponse{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	cur := s.sample(&rec)
	cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
	e.mu.Lock()
	e.lastStats = &cur
	e.mu.Unlock()
	return cur, nil
}

func (s *Service) sample(rec *Record) container.StatsResponse {
	st := container.StatsResponse{ID: rec.ID, Name: rec.Name, OSType: "linux", Read: time.Now().UTC()}
	cg := cgroupPath(rec)
	st.CPUStats.SystemUsage = systemCPUUsage()
	st.CPUStats.OnlineCPUs = uint32(runtime.NumCPU())
	var memAccounted bool
	if s.host.cgroups.V2 {
		memAccounted = readV2(&st, filepath.Join(spec.CgroupRoot, cg))
	} else {
		memAccounted = readV1(&st, spec.CgroupRoot, cg)
	}
	st.Networks = netStats(rec.State.Pid)
	// No limit reads as a huge number; docker shows the host's memory.
	// Without memory accounting (a v2 host without the memory controller)
	// both stay 0, as docker shows them ("0B / 0B").
	if total := hostMemory(); memAccounted && (st.MemoryStats.Limit == 0 || st.MemoryStats.Limit > total) {
		st.MemoryStats.Limit = total
	}
	return st
}

func cgroupPath(rec *Record) string {
	parent := rec.HostConfig.CgroupParent
	if parent == "" {
		parent = spec.DefaultCgroupParent
	}
	return filepath.Join(parent, rec.ID)
}

// systemCPUUsage is the host's total CPU time in nanoseconds, from the
// first line of /proc/stat (in USER_HZ ticks of 10 ms).
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	var total uint64
	for _, v := range strings.Fields(sc.Text())[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
	}
	return total * 1e7
}

// netStats reads the interfaces of the container's network namespace.
func netStats(pid int) map[string]container.NetworkStats {
	if pid == 0 {
		return nil
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]container.NetworkStats{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" {
			continue
		}
		v := strings.Fields(rest)
		if len(v) < 12 {
			continue
		}
		n := func(i int) uint64 { x, _ := strconv.ParseUint(v[i], 10, 64); return x }
		out[name] = container.NetworkStats{RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11)}
	}
	return out
}

// hostMemory is the machine's RAM in bytes.
func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

package container

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// The cgroup files stats read, per hierarchy. A file whose controller the
// host lacks is absent and its figures stay 0, as with dockerd; the two
// exceptions are documented where they are read.
//
//	v1 (<root>/<controller>/<parent>/<id>/)      v2 (<root>/<parent>/<id>/)
//	cpuacct.usage, .usage_percpu, .stat          cpu.stat (core: exists without the cpu controller)
//	cpu.stat (throttling)                        cpu.stat nr_periods/nr_throttled/throttled_usec
//	memory.usage_in_bytes, .max_usage_in_bytes,  memory.current, memory.peak, memory.max, memory.stat
//	  .limit_in_bytes, .failcnt, .stat
//	pids.current, pids.max                       pids.current, pids.max (else cgroup.threads is counted)
//	blkio.throttle.io_service_bytes_recursive,   io.stat (rbytes/wbytes, rios/wios)
//	blkio.throttle.io_serviced_recursive

func readUint(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func readKV(p string) map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open(p)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if n, err := strconv.ParseUint(v, 10, 64); ok && err == nil {
			out[k] = n
		}
	}
	return out
}

// readV1 fills st from the v1 hierarchies under root; it reports whether
// the memory controller accounts for the container.
func readV1(st *container.StatsResponse, root, cg string) bool {
	acct := filepath.Join(root, "cpuacct", cg)
	st.CPUStats.CPUUsage.TotalUsage = readUint(filepath.Join(acct, "cpuacct.usage"))
	if b, err := os.ReadFile(filepath.Join(acct, "cpuacct.usage_percpu")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.ParseUint(f, 10, 64)
			st.CPUStats.CPUUsage.PercpuUsage = append(st.CPUStats.CPUUsage.PercpuUsage, n)
		}
	}
	ticks := readKV(filepath.Join(acct, "cpuacct.stat"))
	st.CPUStats.CPUUsage.UsageInUsermode = ticks["user"] * 1e7
	st.CPUStats.CPUUsage.UsageInKernelmode = ticks["system"] * 1e7
	thr := readKV(filepath.Join(root, "cpu", cg, "cpu.stat"))
	st.CPUStats.ThrottlingData = container.ThrottlingData{Periods: thr["nr_periods"], ThrottledPeriods: thr["nr_throttled"], ThrottledTime: thr["throttled_time"]}
	mem := filepath.Join(root, "memory", cg)
	st.MemoryStats.Usage = readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	st.MemoryStats.MaxUsage = readUint(filepath.Join(mem, "memory.max_usage_in_bytes"))
	st.MemoryStats.Limit = readUint(filepath.Join(mem, "memory.limit_in_bytes"))
	st.MemoryStats.Failcnt = readUint(filepath.Join(mem, "memory.failcnt"))
	st.MemoryStats.Stats = readKV(filepath.Join(mem, "memory.stat"))
	st.PidsStats.Current = readUint(filepath.Join(root, "pids", cg, "pids.current"))
	st.PidsStats.Limit = readUint(filepath.Join(root, "pids", cg, "pids.max"))
	blk := filepath.Join(root, "blkio", cg)
	st.BlkioStats.IoServiceBytesRecursive = readBlkioV1(filepath.Join(blk, "blkio.throttle.io_service_bytes_recursive"))
	st.BlkioStats.IoServicedRecursive = readBlkioV1(filepath.Join(blk, "blkio.throttle.io_serviced_recursive"))
	return exists(filepath.Join(mem, "memory.usage_in_bytes"))
}

// readV2 fills st from the container's cgroup2 directory; it reports
// whether the memory controller accounts for the container.
func readV2(st *container.StatsResponse, dir string) bool {
	cpu := readKV(filepath.Join(dir, "cpu.stat"))
	st.CPUStats.CPUUsage.TotalUsage = cpu["usage_usec"] * 1000
	st.CPUStats.CPUUsage.UsageInUsermode = cpu["user_usec"] * 1000
	st.CPUStats.CPUUsage.UsageInKernelmode = cpu["system_usec"] * 1000
	st.CPUStats.ThrottlingData = container.ThrottlingData{Periods: cpu["nr_periods"], ThrottledPeriods: cpu["nr_throttled"], ThrottledTime: cpu["throttled_usec"] * 1000}
	st.MemoryStats.Usage = readUint(filepath.Join(dir, "memory.current"))
	st.MemoryStats.MaxUsage = readUint(filepath.Join(dir, "memory.peak"))
	st.MemoryStats.Limit = readUint(filepath.Join(dir, "memory.max")) // "max" reads as 0: no limit
	st.MemoryStats.Stats = readKV(filepath.Join(dir, "memory.stat"))
	if exists(filepath.Join(dir, "pids.current")) {
		st.PidsStats.Current = readUint(filepath.Join(dir, "pids.current"))
		st.PidsStats.Limit = readUint(filepath.Join(dir, "pids.max"))
	} else {
		// Without the pids controller the cgroup still lists its tasks,
		// which is what pids.current would count.
		st.PidsStats.Current = countLines(filepath.Join(dir, "cgroup.threads"))
	}
	st.BlkioStats.IoServiceBytesRecursive, st.BlkioStats.IoServicedRecursive = readIOStatV2(filepath.Join(dir, "io.stat"))
	return exists(filepath.Join(dir, "memory.current"))
}

func countLines(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	return uint64(len(strings.Fields(string(b))))
}

// readBlkioV1 parses "8:0 Read 4096" lines; the per-cgroup "Total" line
// has no device and is skipped.
func readBlkioV1(p string) []container.BlkioStatEntry {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []container.BlkioStatEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 3 {
			continue
		}
		major, minor, ok := parseDevNum(fl[0])
		v, err := strconv.ParseUint(fl[2], 10, 64)
		if !ok || err != nil {
			continue
		}
		out = append(out, container.BlkioStatEntry{Major: major, Minor: minor, Op: fl[1], Value: v})
	}
	return out
}

// readIOStatV2 parses io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...")
// into dockerd's v2 shape: lower-case "read"/"write" entries.
func readIOStatV2(p string) (bytes, ios []container.BlkioStatEntry) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 2 {
			continue
		}
		major, minor, ok := parseDevNum(fl[0])
		if !ok {
			continue
		}
		for _, kv := range fl[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := container.BlkioStatEntry{Major: major, Minor: minor, Value: n}
			switch k {
			case "rbytes", "wbytes":
				e.Op = opName(k)
				bytes = append(bytes, e)
			case "rios", "wios":
				e.Op = opName(k)
				ios = append(ios, e)
			}
		}
	}
	return bytes, ios
}

func opName(key string) string {
	if key[0] == 'r' {
		return "read"
	}
	return "write"
}

func parseDevNum(s string) (major, minor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	ma, err1 := strconv.ParseUint(a, 10, 64)
	mi, err2 := strconv.ParseUint(b, 10, 64)
	return ma, mi, found && err1 == nil && err2 == nil
}

package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// CgroupRoot is where runc, crun and berth look for the cgroup hierarchy;
// its filesystem type decides between v1 and v2, as it does for runc.
const CgroupRoot = "/sys/fs/cgroup"

// CgroupCaps says which resource limits this host's cgroups can enforce,
// in the terms of Docker's sysinfo (the same booleans `docker info`
// reports). A limit the host cannot enforce is discarded with a warning at
// create (see FitResources) instead of failing inside the runtime with
// "openat2 .../pids.max: no such file or directory".
type CgroupCaps struct {
	// V2 is true when CgroupRoot is a cgroup2 mount (unified hierarchy).
	V2 bool
	// Controllers are the controllers available to containers: the v2
	// root's cgroup.controllers, or the mounted v1 hierarchies.
	Controllers []string

	MemoryLimit, SwapLimit, MemoryReservation, MemorySwappiness, OomKillDisable bool
	KernelMemoryTCP                                                             bool
	CPUShares, CPUCfs, CPURealtime                                              bool
	Cpuset                                                                      bool
	PidsLimit                                                                   bool
	BlkioWeight, BlkioWeightDevice                                              bool
	BlkioReadBps, BlkioWriteBps, BlkioReadIOps, BlkioWriteIOps                  bool
}

// Version is "2" or "1", as `docker info` prints it.
func (c CgroupCaps) Version() string {
	if c.V2 {
		return "2"
	}
	return "1"
}

// HasController reports whether name is among c.Controllers.
func (c CgroupCaps) HasController(name string) bool {
	return slices.Contains(c.Controllers, name)
}

// ReadCgroupCaps inspects the hierarchy mounted at root (normally
// CgroupRoot). The version comes from root's filesystem type, never from
// what the host is assumed to be: a daemon in a mount namespace with
// cgroup2 over /sys/fs/cgroup is on v2 even on a hybrid host.
func ReadCgroupCaps(root string) CgroupCaps {
	var st unix.Statfs_t
	if unix.Statfs(root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		b, _ := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
		return CgroupCapsV2(strings.Fields(string(b)))
	}
	return cgroupCapsV1(root)
}

// CgroupCapsV2 derives the capabilities of a cgroup v2 host from the
// controllers its root offers. The freezer, cgroup.kill and the device
// filter (eBPF) are part of cgroup2 itself, and cpu.stat's usage fields
// exist without the cpu controller. Swappiness, OOM-killer disabling and
// real-time CPU have no v2 interface.
func CgroupCapsV2(controllers []string) CgroupCaps {
	c := CgroupCaps{V2: true, Controllers: controllers}
	mem, cpu, io := c.HasController("memory"), c.HasController("cpu"), c.HasController("io")
	c.MemoryLimit, c.SwapLimit, c.MemoryReservation = mem, mem, mem
	c.CPUShares, c.CPUCfs = cpu, cpu
	c.Cpuset = c.HasController("cpuset")
	c.PidsLimit = c.HasController("pids")
	c.BlkioWeight, c.BlkioWeightDevice = io, io
	c.BlkioReadBps, c.BlkioWriteBps, c.BlkioReadIOps, c.BlkioWriteIOps = io, io, io, io
	return c
}

// cgroupCapsV1 probes the interface files of each v1 hierarchy under root;
// a controller that is not mounted has none.
func cgroupCapsV1(root string) CgroupCaps {
	var c CgroupCaps
	has := func(ctrl string, files ...string) bool {
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(root, ctrl, f)); err != nil {
				return false
			}
		}
		return true
	}
	for _, ctrl := range []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "net_cls", "perf_event", "pids", "rdma"} {
		if has(ctrl, "cgroup.procs") {
			c.Controllers = append(c.Controllers, ctrl)
		}
	}
	c.MemoryLimit = has("memory", "memory.limit_in_bytes")
	c.SwapLimit = has("memory", "memory.memsw.limit_in_bytes")
	c.MemoryReservation = has("memory", "memory.soft_limit_in_bytes")
	c.MemorySwappiness = has("memory", "memory.swappiness")
	c.OomKillDisable = has("memory", "memory.oom_control")
	c.CPUShares = has("cpu", "cpu.shares")
	c.CPUCfs = has("cpu", "cpu.cfs_quota_us", "cpu.cfs_period_us")
	c.CPURealtime = has("cpu", "cpu.rt_period_us", "cpu.rt_runtime_us")
	c.Cpuset = has("cpuset", "cpuset.cpus", "cpuset.mems")
	c.PidsLimit = has("pids", "cgroup.procs")
	c.BlkioWeight = has("blkio", "blkio.weight")
	c.BlkioWeightDevice = has("blkio", "blkio.weight_device")
	c.BlkioReadBps = has("blkio", "blkio.throttle.read_bps_device")
	c.BlkioWriteBps = has("blkio", "blkio.throttle.write_bps_device")
	c.BlkioReadIOps = has("blkio", "blkio.throttle.read_iops_device")
	c.BlkioWriteIOps = has("blkio", "blkio.throttle.write_iops_device")
	return c
}

// InfoWarnings are the lines `docker info` ends with for what the host
// lacks, in dockerd's order and words.
func (c CgroupCaps) InfoWarnings() []string {
	var w []string
	add := func(ok bool, what string) {
		if !ok {
			w = append(w, "WARNING: No "+what+" support")
		}
	}
	add(c.MemoryLimit, "memory limit")
	add(c.SwapLimit, "swap limit")
	if !c.V2 {
		add(c.OomKillDisable, "oom kill disable")
	}
	add(c.CPUCfs, "cpu cfs quota")
	add(c.CPUCfs, "cpu cfs period")
	add(c.CPUShares, "cpu shares")
	add(c.Cpuset, "cpuset")
	if c.V2 {
		add(c.BlkioWeight, "io.weight")
		add(c.BlkioWeightDevice, "io.weight (per device)")
		add(c.BlkioReadBps, "io.max (rbps)")
		add(c.BlkioWriteBps, "io.max (wbps)")
		add(c.BlkioReadIOps, "io.max (riops)")
		add(c.BlkioWriteIOps, "io.max (wiops)")
		return w
	}
	// No weight warnings on v1, as with dockerd: blkio.weight depends on
	// the I/O scheduler (CFQ/BFQ), which most hosts do not use.
	add(c.BlkioReadBps, "blkio throttle.read_bps_device")
	add(c.BlkioWriteBps, "blkio throttle.write_bps_device")
	add(c.BlkioReadIOps, "blkio throttle.read_iops_device")
	add(c.BlkioWriteIOps, "blkio throttle.write_iops_device")
	return w
}

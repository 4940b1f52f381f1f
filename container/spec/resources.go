package spec

import (
	"fmt"
	"slices"
	"strings"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// MinMemory is the smallest --memory Docker accepts.
const MinMemory = 6 << 20

// cfsPeriod is the CFS period --cpus is expressed against (100ms).
const cfsPeriod = 100000

// rlimitNames maps --ulimit names to resource numbers.
var rlimitNames = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS,
	"memlock": unix.RLIMIT_MEMLOCK, "msgqueue": unix.RLIMIT_MSGQUEUE,
	"nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS,
	"rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME,
	"sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
	"as": unix.RLIMIT_AS,
}

// HostRlimits reads the engine's own hard limits, by --ulimit name. A
// container's process starts from the runtime's limits, and raising a hard
// limit needs CAP_SYS_RESOURCE, which berth may not hold (it does not when
// it runs inside another container), so these bound what --ulimit may ask.
func HostRlimits() (map[string]uint64, error) {
	out := make(map[string]uint64, len(rlimitNames))
	for name, res := range rlimitNames {
		var rl unix.Rlimit
		if err := unix.Getrlimit(res, &rl); err != nil {
			return nil, fmt.Errorf("getrlimit %s: %w", name, err)
		}
		out[name] = rl.Max
	}
	return out, nil
}

// rlimits converts --ulimit values. Docker sets none by default (the
// container inherits the runtime's), so only the ones asked for appear.
// A hard limit above the host's is rejected here with the limit's name
// rather than failing later inside the runtime with "operation not
// permitted".
func rlimits(ulimits []*container.Ulimit, hostHard map[string]uint64) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range ulimits {
		if u == nil {
			continue
		}
		name := strings.ToLower(u.Name)
		if _, ok := rlimitNames[name]; !ok {
			return nil, fmt.Errorf("ulimit %q: invalid ulimit type: %w", u.Name, errdefs.ErrInvalidArgument)
		}
		if u.Soft > u.Hard {
			return nil, fmt.Errorf("ulimit %s: invalid ulimit argument: soft limit %d is greater than hard limit %d: %w", name, u.Soft, u.Hard, errdefs.ErrInvalidArgument)
		}
		hard, soft := toRlim(u.Hard), toRlim(u.Soft)
		if max, ok := hostHard[name]; ok && hard > max {
			return nil, fmt.Errorf("ulimit %s: hard limit %d exceeds the host's hard limit %d (raising it needs CAP_SYS_RESOURCE): %w", name, u.Hard, max, errdefs.ErrInvalidArgument)
		}
		out = slices.DeleteFunc(out, func(r specs.POSIXRlimit) bool { return r.Type == rlimitType(name) })
		out = append(out, specs.POSIXRlimit{Type: rlimitType(name), Hard: hard, Soft: soft})
	}
	return out, nil
}

// toRlim maps Docker's -1 ("unlimited") to RLIM_INFINITY.
func toRlim(v int64) uint64 {
	if v < 0 {
		return unix.RLIM_INFINITY
	}
	return uint64(v)
}

func rlimitType(name string) string { return "RLIMIT_" + strings.ToUpper(name) }

// resources converts the cgroup settings. Only what was asked for is set,
// so a default container writes no limits (which would need controllers,
// and on a host without CAP_SYS_RESOURCE could not always be raised).
func resources(r container.Resources, hostCPUs int, noSwap bool, blkio map[string]DeviceNumber) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	mem, err := memory(r, noSwap)
	if err != nil {
		return nil, err
	}
	out.Memory = mem
	cpu, err := cpuResources(r, hostCPUs)
	if err != nil {
		return nil, err
	}
	out.CPU = cpu
	if r.PidsLimit != nil {
		limit := *r.PidsLimit
		if limit <= 0 {
			limit = -1 // 0 and -1 both mean unlimited in Docker
		}
		out.Pids = &specs.LinuxPids{Limit: &limit}
	}
	bio, err := blockIO(r, blkio)
	if err != nil {
		return nil, err
	}
	out.BlockIO = bio
	return out, nil
}

func memory(r container.Resources, noSwap bool) (*specs.LinuxMemory, error) {
	if r.Memory != 0 && r.Memory < MinMemory {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Minimum memory limit allowed is 6MB")
	}
	if r.MemorySwap > 0 && r.Memory == 0 {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.MemoryReservation != 0 && r.MemoryReservation < MinMemory {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Minimum memory reservation allowed is 6MB")
	}
	if r.MemorySwappiness != nil && (*r.MemorySwappiness < -1 || *r.MemorySwappiness > 100) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid value: %d, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	}
	m := &specs.LinuxMemory{}
	set := false
	if r.Memory > 0 {
		limit := r.Memory
		// Docker's default: as much swap as memory (memory+swap = 2x).
		swap := r.MemorySwap
		if swap == 0 {
			swap = 2 * limit
		}
		m.Limit, set = &limit, true
		if !noSwap {
			m.Swap = &swap
		}
	}
	if r.MemoryReservation > 0 {
		v := r.MemoryReservation
		m.Reservation, set = &v, true
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
		v := uint64(*r.MemorySwappiness)
		m.Swappiness, set = &v, true
	}
	if r.OomKillDisable != nil && *r.OomKillDisable {
		v := true
		m.DisableOOMKiller, set = &v, true
	}
	if !set {
		return nil, nil
	}
	return m, nil
}

// nanoCPUConflict refuses --cpus beside the CFS values it is made of.
func nanoCPUConflict(r container.Resources) error {
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	return nil
}

func cpuResources(r container.Resources, hostCPUs int) (*specs.LinuxCPU, error) {
	if err := nanoCPUConflict(r); err != nil {
		return nil, err
	}
	if r.NanoCPUs < 0 || (hostCPUs > 0 && r.NanoCPUs > int64(hostCPUs)*1e9) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", hostCPUs, hostCPUs)
	}
	if r.CPURealtimePeriod > 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "cpu-rt-runtime cannot be higher than cpu-rt-period")
	}
	c := &specs.LinuxCPU{}
	set := false
	if r.CPURealtimePeriod > 0 {
		v := uint64(r.CPURealtimePeriod)
		c.RealtimePeriod, set = &v, true
	}
	if r.CPURealtimeRuntime != 0 {
		v := r.CPURealtimeRuntime
		c.RealtimeRuntime, set = &v, true
	}
	if r.CPUShares != 0 {
		v := uint64(r.CPUShares)
		c.Shares, set = &v, true
	}
	if r.NanoCPUs > 0 {
		period := uint64(cfsPeriod)
		quota := r.NanoCPUs * cfsPeriod / 1e9
		c.Period, c.Quota, set = &period, &quota, true
	}
	if r.CPUPeriod > 0 {
		v := uint64(r.CPUPeriod)
		c.Period, set = &v, true
	}
	if r.CPUQuota > 0 {
		v := r.CPUQuota
		c.Quota, set = &v, true
	}
	if r.CpusetCpus != "" {
		c.Cpus, set = r.CpusetCpus, true
	}
	if r.CpusetMems != "" {
		c.Mems, set = r.CpusetMems, true
	}
	if !set {
		return nil, nil
	}
	return c, nil
}

// sysctls validates --sysctl against what is namespaced (and therefore
// safe to set per container): IPC keys unless --ipc host, net.* unless
// --network host, UTS names unless --uts host.
func sysctls(in map[string]string, hc *container.HostConfig) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		ipc := k == "kernel.msgmax" || k == "kernel.msgmnb" || k == "kernel.msgmni" || k == "kernel.sem" ||
			k == "kernel.shmall" || k == "kernel.shmmax" || k == "kernel.shmmni" || k == "kernel.shm_rmid_forced" ||
			strings.HasPrefix(k, "fs.mqueue.")
		uts := k == "kernel.domainname" || k == "kernel.hostname"
		net := strings.HasPrefix(k, "net.")
		switch {
		case ipc && hc.IpcMode.IsHost(), net && hc.NetworkMode == "host", uts && hc.UTSMode.IsHost():
			return nil, fmt.Errorf("sysctl %q is not allowed in the host's namespace: %w", k, errdefs.ErrInvalidArgument)
		case !ipc && !uts && !net:
			return nil, fmt.Errorf("sysctl %q is not namespaced and cannot be set per container: %w", k, errdefs.ErrInvalidArgument)
		}
		out[k] = v
	}
	return out, nil
}

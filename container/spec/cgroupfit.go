package spec

import (
	"berth/errdefs"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
)

// FitResources drops from r the limits the host's cgroups cannot enforce
// and returns dockerd's warning for each, or dockerd's error where it
// refuses instead (--cpus and real-time CPU without the cpu controller).
// The caller stores the fitted r, so inspect shows what is enforced, as
// with dockerd (Memory 0, MemorySwap -1, PidsLimit null). The warnings'
// order and wording are dockerd's (20.10, checked on a v2 host without
// memory/cpu/pids/io controllers).
func FitResources(r *container.Resources, caps CgroupCaps) ([]string, error) {
	warnings := []string{}
	warn := func(msg string) { warnings = append(warnings, msg) }
	if r.MemorySwappiness != nil && *r.MemorySwappiness == -1 {
		r.MemorySwappiness = nil // the CLI's "unset"
	}
	if r.Memory != 0 && r.Memory < MinMemory {
		return warnings, errdefs.Errorf(errdefs.ErrInvalidArgument, "Minimum memory limit allowed is 6MB")
	}
	if err := fitMemory(r, caps, warn); err != nil {
		return warnings, err
	}
	if r.PidsLimit != nil && !caps.PidsLimit {
		if *r.PidsLimit > 0 {
			warn("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.")
		}
		r.PidsLimit = nil
	}
	if err := fitCPU(r, caps, warn); err != nil {
		return warnings, err
	}
	fitBlkio(r, caps, warn)
	return warnings, nil
}

func fitMemory(r *container.Resources, caps CgroupCaps, warn func(string)) error {
	if r.Memory > 0 && !caps.MemoryLimit {
		warn("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
		r.Memory, r.MemorySwap = 0, -1
	}
	if r.Memory > 0 && r.MemorySwap != -1 && !caps.SwapLimit {
		warn("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
		r.MemorySwap = -1
	}
	if r.Memory == 0 && r.MemorySwap > 0 {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwappiness != nil && !caps.MemorySwappiness {
		warn("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.")
		r.MemorySwappiness = nil
	}
	if r.MemoryReservation > 0 && !caps.MemoryReservation {
		warn("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.")
		r.MemoryReservation = 0
	}
	if r.OomKillDisable != nil && !caps.OomKillDisable {
		// Asking for the default (false) is no loss worth a warning.
		if *r.OomKillDisable {
			warn("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
		}
		r.OomKillDisable = nil
	}
	return nil
}

func fitCPU(r *container.Resources, caps CgroupCaps, warn func(string)) error {
	if err := nanoCPUConflict(*r); err != nil {
		return err
	}
	if r.NanoCPUs > 0 && !caps.CPUCfs {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")
	}
	if (r.CPURealtimePeriod > 0 || r.CPURealtimeRuntime > 0) && !caps.CPURealtime {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Your kernel does not support CPU real-time scheduler")
	}
	if r.CPUShares > 0 && !caps.CPUShares {
		warn("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
		r.CPUShares = 0
	}
	if (r.CPUPeriod != 0 || r.CPUQuota != 0) && !caps.CPUCfs {
		warn("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.")
		r.CPUPeriod, r.CPUQuota = 0, 0
	}
	if (r.CpusetCpus != "" || r.CpusetMems != "") && !caps.Cpuset {
		warn("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
		r.CpusetCpus, r.CpusetMems = "", ""
	}
	return nil
}

func fitBlkio(r *container.Resources, caps CgroupCaps, warn func(string)) {
	if r.BlkioWeight > 0 && !caps.BlkioWeight {
		warn("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		r.BlkioWeight = 0
	}
	if len(r.BlkioWeightDevice) > 0 && !caps.BlkioWeightDevice {
		warn("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		r.BlkioWeightDevice = []*blkiodev.WeightDevice{}
	}
	throttles := []struct {
		ok   bool
		devs *[]*blkiodev.ThrottleDevice
		msg  string
	}{
		{caps.BlkioReadBps, &r.BlkioDeviceReadBps, "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."},
		{caps.BlkioWriteBps, &r.BlkioDeviceWriteBps, "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded."},
		{caps.BlkioReadIOps, &r.BlkioDeviceReadIOps, "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded."},
		{caps.BlkioWriteIOps, &r.BlkioDeviceWriteIOps, "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded."},
	}
	for _, th := range throttles {
		if len(*th.devs) > 0 && !th.ok {
			warn(th.msg)
			*th.devs = []*blkiodev.ThrottleDevice{}
		}
	}
}

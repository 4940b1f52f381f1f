package container

import (
	"os"
	"runtime"

	"berth/container/spec"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostFacts are what the spec needs to know about this machine; read once
// when the service starts, since they do not change while it runs.
type hostFacts struct {
	rlimits  map[string]uint64
	lastCap  int
	bounding []string
	devices  []specs.LinuxDevice
	kernel   string
	cgroups  spec.CgroupCaps
	cpus     int
}

func readHostFacts() hostFacts {
	h := hostFacts{cpus: runtime.NumCPU()}
	h.rlimits, _ = spec.HostRlimits()
	h.lastCap, _ = spec.HostLastCap()
	h.bounding, _ = spec.HostBoundingCaps()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.kernel = unix.ByteSliceToString(u.Release[:])
	}
	h.cgroups = spec.ReadCgroupCaps(spec.CgroupRoot)
	return h
}

// privilegedDevices is read only for --privileged containers, which get
// every host device.
func privilegedDevices() []specs.LinuxDevice {
	devs, _ := spec.HostDevices("/dev")
	return devs
}

// specInput fills the host part of a spec input.
func (h hostFacts) fill(in *spec.Input) {
	in.HostRlimits, in.CapLastCap, in.HostBounding = h.rlimits, h.lastCap, h.bounding
	in.KernelRelease, in.CgroupV2, in.HostCPUs, in.Arch = h.kernel, h.cgroups.V2, h.cpus, runtime.GOARCH
	in.NoSwapLimit = !h.cgroups.SwapLimit
	if in.HostConfig != nil {
		// A record created when the host's cgroups offered more (before a
		// switch to v2, or by a daemon with another view) may hold limits
		// this host cannot write; they are dropped from the spec as at
		// create, on a copy, so the record keeps what was asked for. What
		// FitResources refuses (--cpus) stays, and the runtime says why.
		hc := *in.HostConfig
		if _, err := spec.FitResources(&hc.Resources, h.cgroups); err == nil {
			in.HostConfig = &hc
		}
	}
	if in.HostConfig != nil && in.HostConfig.Privileged {
		in.HostDevices = privilegedDevices()
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

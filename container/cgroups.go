package container

import (
	"path/filepath"

	"berth/container/spec"

	"github.com/moby/moby/api/types/container"
)

// fitResources drops the limits this host's cgroups cannot enforce from a
// create request, as dockerd does, and returns dockerd's warnings (the CLI
// prints them as "WARNING: ..."). The fitted values are what gets stored.
func (s *Service) fitResources(hc *container.HostConfig) ([]string, error) {
	if hc == nil {
		return []string{}, nil
	}
	return spec.FitResources(&hc.Resources, s.host.cgroups)
}

// oomKilled reports whether the kernel's OOM killer killed a process of
// rec's cgroup during this run: the oom_kill counter of memory.events (v2)
// or memory.oom_control (v1). It must be read before the runtime deletes
// the cgroup. Without the memory controller there is no counter, and no
// memory limit to run out of.
func (s *Service) oomKilled(rec *Record) bool {
	cg := cgroupPath(rec)
	if s.host.cgroups.V2 {
		return readKV(filepath.Join(spec.CgroupRoot, cg, "memory.events"))["oom_kill"] > 0
	}
	return readKV(filepath.Join(spec.CgroupRoot, "memory", cg, "memory.oom_control"))["oom_kill"] > 0
}

package container

import (
	"testing"

	"berth/container/spec"

	"github.com/moby/moby/api/types/container"
)

// TestFillFitsStoredLimits: a record holding limits this host's cgroups
// cannot write (created under another view) gets a spec without them,
// while the record keeps what was asked for.
func TestFillFitsStoredLimits(t *testing.T) {
	t.Parallel()
	pids := int64(50)
	hc := &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, PidsLimit: &pids}}
	h := hostFacts{cgroups: spec.CgroupCapsV2([]string{"hugetlb"})}
	in := spec.Input{HostConfig: hc}
	h.fill(&in)
	if in.HostConfig.Memory != 0 || in.HostConfig.PidsLimit != nil || !in.CgroupV2 || !in.NoSwapLimit {
		t.Errorf("spec input: %+v, v2 %v, no swap %v", in.HostConfig.Resources, in.CgroupV2, in.NoSwapLimit)
	}
	if hc.Memory != 64<<20 || hc.PidsLimit != &pids {
		t.Errorf("the record changed: %+v", hc.Resources)
	}
	full := hostFacts{cgroups: spec.CgroupCapsV2([]string{"memory", "pids"})}
	in = spec.Input{HostConfig: hc}
	full.fill(&in)
	if in.HostConfig.Memory != 64<<20 || in.HostConfig.PidsLimit == nil || *in.HostConfig.PidsLimit != 50 {
		t.Errorf("with the controllers: %+v", in.HostConfig.Resources)
	}
}

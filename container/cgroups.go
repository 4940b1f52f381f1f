package container

import (
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

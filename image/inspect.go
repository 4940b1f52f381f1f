package image

import (
	imagetypes "github.com/moby/moby/api/types/image"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// InspectResponse is the image inspect document. The current wire type
// dropped fields that API clients up to 1.51 (docker 28) still show and that
// commit sets, so they are carried here beside it.
type InspectResponse struct {
	imagetypes.InspectResponse
	Parent          string                           `json:"Parent"`
	DockerVersion   string                           `json:"DockerVersion"`
	Container       string                           `json:"Container,omitempty"`
	ContainerConfig *dockerspec.DockerOCIImageConfig `json:"ContainerConfig,omitempty"`
}

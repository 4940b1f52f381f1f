package image

import (
	"encoding/json"
	"fmt"
	"time"

	"berth/errdefs"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
)

// Config is an image configuration as Docker writes it: the OCI image config
// plus the Docker extensions (healthcheck, onbuild, shell) and the legacy
// top-level fields that `commit` and `inspect` still use.
type Config struct {
	dockerspec.DockerOCIImage
	Parent          string                           `json:"parent,omitempty"`
	Comment         string                           `json:"comment,omitempty"`
	Container       string                           `json:"container,omitempty"`
	ContainerConfig *dockerspec.DockerOCIImageConfig `json:"container_config,omitempty"`
	DockerVersion   string                           `json:"docker_version,omitempty"`
}

// maxConfigSize bounds config blobs read into memory; real ones are a few KB.
const maxConfigSize = 8 << 20

// ParseConfig decodes and sanity-checks a config blob.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("image config: %w: %v", errdefs.ErrInvalidArgument, err)
	}
	if c.RootFS.Type != "layers" {
		return nil, fmt.Errorf("image config: rootfs type %q: %w", c.RootFS.Type, errdefs.ErrInvalidArgument)
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("image config: diff id %q: %w", d, errdefs.ErrInvalidArgument)
		}
	}
	return &c, nil
}

// created returns the creation time, zero when absent.
func (c *Config) created() time.Time {
	if c.Created == nil {
		return time.Time{}
	}
	return *c.Created
}

// chainIDs returns the chain ID of every layer, bottom first: the keys of the
// layer snapshots.
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// marshalConfig encodes a config as the bytes whose digest is the image ID.
func marshalConfig(c *Config) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return b, nil
}

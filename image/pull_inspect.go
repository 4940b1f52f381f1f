package image

import (
	"context"
	"encoding/json"
	"fmt"

	"berth/errdefs"
	"berth/remote"
	"berth/remote/credentials"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DistributionInspect describes what name resolves to in its registry
// without pulling it (`docker buildx imagetools`-like callers and the
// /distribution API): the manifest or index descriptor and the platforms
// it offers.
func (s *Service) DistributionInspect(ctx context.Context, name string, auth credentials.AuthConfig) (registry.DistributionInspect, error) {
	var out registry.DistributionInspect
	if s.dist.remote == nil {
		return out, fmt.Errorf("distribution inspect %s: no registry client configured: %w", name, errdefs.ErrNotImplemented)
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return out, fmt.Errorf("invalid reference format: %w", invalidRef(err))
	}
	ref := reference.TagNameOnly(named)
	sess := s.dist.remote.Session(remote.ForRegistry(auth))
	desc, body, err := sess.FetchManifest(ctx, ref, tagOrDigest(ref))
	if err != nil {
		return out, manifestError(ref, err)
	}
	out.Descriptor = desc
	out.Platforms = []ocispec.Platform{}
	if remote.IsIndex(desc.MediaType) {
		idx, err := remote.ParseIndex(body)
		if err != nil {
			return out, err
		}
		for _, m := range idx.Manifests {
			if m.Platform != nil {
				out.Platforms = append(out.Platforms, *m.Platform)
			}
		}
		return out, nil
	}
	m, err := remote.ParseManifest(body)
	if err != nil {
		return out, err
	}
	if m.Config.Size > maxConfigSize {
		return out, fmt.Errorf("image config %s: %d bytes: %w", m.Config.Digest, m.Config.Size, errdefs.ErrInvalidArgument)
	}
	p := &puller{s: s, sess: sess}
	raw, err := p.fetchSmall(ctx, ref, m.Config)
	if err != nil {
		return out, fmt.Errorf("image config: %w", err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return out, fmt.Errorf("image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	out.Platforms = append(out.Platforms, cfg.Platform)
	return out, nil
}

package image

import (
	"context"
	"fmt"
	"io"
	"time"

	"berth/errdefs"
	"berth/version"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions describe the image `commit` makes from a container.
type CommitOptions struct {
	Ref     string // optional repo[:tag]
	Author  string
	Comment string
	// CreatedBy is the history entry's command (the container's).
	CreatedBy string
	Container string // the container's ID, recorded as Docker does
}

// CommitImage stores a new image: cfg (whose RootFS and History describe
// the parent's layers) plus one more layer read from layer, an uncompressed
// tar of the container's changes. The parent's top layer is the new layer's
// parent. On failure nothing is left behind.
func (s *Service) CommitImage(ctx context.Context, parent digest.Digest, cfg *Config, layer io.Reader, opts CommitOptions) (digest.Digest, error) {
	var ref reference.Named
	if opts.Ref != "" {
		var err error
		if ref, err = ParseReference(opts.Ref); err != nil {
			return "", err
		}
		if _, ok := ref.(reference.Digested); ok {
			return "", fmt.Errorf("refusing to create a tag with a digest reference: %w", errdefs.ErrInvalidArgument)
		}
	}
	top, err := s.TopLayer(ctx, parent)
	if err != nil {
		return "", err
	}
	l, err := s.ingestLayer(ctx, digest.Digest(top), layer)
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	defer l.release(ctx)
	now := time.Now().UTC()
	img := *cfg
	img.Created, img.Author = &now, opts.Author
	img.RootFS.DiffIDs = append(append([]digest.Digest{}, cfg.RootFS.DiffIDs...), l.diffID)
	img.History = append(append([]ocispec.History{}, cfg.History...), ocispec.History{
		Created: &now, CreatedBy: opts.CreatedBy, Comment: opts.Comment, Author: opts.Author,
	})
	img.Parent, img.Comment, img.Container = parent.String(), opts.Comment, opts.Container
	img.DockerVersion = "berth " + version.Version
	return s.storeImage(ctx, &img, []*ingested{l}, parent, ref)
}

package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"time"

	"berth/errdefs"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// SaveImages writes the images names designate as one tar archive, in the
// layout `docker save` has written since Docker 25:
//
//	blobs/sha256/<hex>   layer tars (as stored: uncompressed), image configs,
//	                     OCI image manifests
//	index.json           OCI index: a manifest descriptor per tag, annotated
//	                     io.containerd.image.name (full name) and
//	                     org.opencontainers.image.ref.name (the tag); one
//	                     without annotations per untagged image
//	manifest.json        [{"Config":"blobs/sha256/<id>","RepoTags":[…],
//	                       "Layers":["blobs/sha256/<diff id>",…]}] for loaders
//	                     that predate the OCI layout
//	oci-layout           {"imageLayoutVersion":"1.0.0"}
//	repositories         {"busybox":{"latest":"<top layer hex>"}}, if any tag
//
// A name is a tag, an ID (or unambiguous prefix), or a repository without a
// tag, which saves every tag of it. Every name is resolved before a byte is
// written, so an unknown name fails cleanly. The archive is streamed from
// the content store; each blob is verified against its digest as it goes,
// and a mismatch ends the stream with an error. Entry times are the images'
// creation times (1970 for the metadata files), so saving the same images
// twice gives identical bytes.
func (s *Service) SaveImages(ctx context.Context, names []string, w io.Writer) error {
	if len(names) == 0 {
		return fmt.Errorf("save: no image names given: %w", errdefs.ErrInvalidArgument)
	}
	plan, err := s.planSave(ctx, names)
	if err != nil {
		return err
	}
	// Pinned, the layers stay while they stream even if an rmi leaves them
	// unused; pinning under layerMu and checking they are still there
	// closes the gap since planning.
	var chains []digest.Digest
	for _, img := range plan.images {
		chains = append(chains, img.chains...)
	}
	unpin, present, err := s.pinLayers(ctx, chains)
	if err != nil {
		return err
	}
	defer unpin()
	for i, ok := range present {
		if !ok {
			return fmt.Errorf("save: layer %s: removed while saving: %w", chains[i], errdefs.ErrNotFound)
		}
	}
	return plan.write(ctx, w)
}

// savedLayer is one layer blob as it goes into the archive.
type savedLayer struct {
	blob      digest.Digest
	size      int64
	mediaType string
}

// savedImage is everything the archive says about one image.
type savedImage struct {
	id         digest.Digest
	parent     digest.Digest
	chains     []digest.Digest
	created    time.Time
	configSize int64
	layers     []savedLayer
	refs       []reference.NamedTagged
	manifest   []byte
}

type savePlan struct {
	s      *Service
	images []*savedImage
}

// planSave resolves every name and gathers sizes and manifests, reading
// nothing bigger than a config.
func (s *Service) planSave(ctx context.Context, names []string) (*savePlan, error) {
	st, err := s.view()
	if err != nil {
		return nil, err
	}
	p := &savePlan{s: s}
	byID := map[digest.Digest]*savedImage{}
	for _, name := range names {
		picks, err := st.saveTargets(name)
		if err != nil {
			return nil, err
		}
		for _, pick := range picks {
			img, ok := byID[pick.id]
			if !ok {
				if img, err = s.describeForSave(ctx, st, pick.id); err != nil {
					return nil, err
				}
				byID[pick.id] = img
				p.images = append(p.images, img)
			}
			if pick.ref != nil && !hasRef(img.refs, pick.ref) {
				img.refs = append(img.refs, pick.ref)
			}
		}
	}
	return p, nil
}

type savePick struct {
	id  digest.Digest
	ref reference.NamedTagged // nil when named by ID or digest
}

// saveTargets is what one name on the command line stands for: a bare
// repository name means all its tags, as in Docker.
func (st *state) saveTargets(name string) ([]savePick, error) {
	if ref, err := reference.ParseNormalizedNamed(name); err == nil && reference.IsNameOnly(ref) {
		var picks []savePick
		for _, key := range sortedKeys(st.tags) {
			tagged, err := reference.ParseNormalizedNamed(key)
			if err != nil || tagged.Name() != ref.Name() {
				continue
			}
			if nt, ok := tagged.(reference.NamedTagged); ok {
				picks = append(picks, savePick{id: st.tags[key], ref: nt})
			}
		}
		if len(picks) > 0 {
			return picks, nil
		}
	}
	id, key, err := st.resolve(name)
	if err != nil {
		return nil, err
	}
	pick := savePick{id: id}
	if key != "" {
		if ref, err := reference.ParseNormalizedNamed(key); err == nil {
			pick.ref, _ = ref.(reference.NamedTagged)
		}
	}
	return []savePick{pick}, nil
}

func hasRef(refs []reference.NamedTagged, r reference.NamedTagged) bool {
	for _, x := range refs {
		if x.String() == r.String() {
			return true
		}
	}
	return false
}

// describeForSave finds an image's blobs and builds its OCI manifest.
func (s *Service) describeForSave(ctx context.Context, st *state, id digest.Digest) (*savedImage, error) {
	r, ok := st.images[id]
	if !ok {
		return nil, noSuchImage(id.String())
	}
	info, err := s.content.Info(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", id, err)
	}
	img := &savedImage{id: id, parent: r.Parent, chains: r.ChainIDs, created: r.Created, configSize: info.Size}
	for _, chain := range r.ChainIDs {
		l, ok := st.layers[chain]
		if !ok {
			return nil, fmt.Errorf("image %s: layer %s: %w", id, chain, errdefs.ErrNotFound)
		}
		if l.Blob == "" {
			return nil, fmt.Errorf("image %s: layer %s: no layer tar kept: %w", id, l.DiffID, errdefs.ErrFailedPrecondition)
		}
		bi, err := s.content.Info(ctx, l.Blob)
		if err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w", id, l.DiffID, err)
		}
		img.layers = append(img.layers, savedLayer{blob: l.Blob, size: bi.Size, mediaType: ociLayerType(l.MediaType)})
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: id, Size: info.Size},
		Layers:    []ocispec.Descriptor{},
	}
	for _, l := range img.layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: l.mediaType, Digest: l.blob, Size: l.size})
	}
	if img.manifest, err = json.Marshal(m); err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", id, err)
	}
	return img, nil
}

// ociLayerType names a stored layer blob's type in OCI terms; Docker's
// schema2 types have OCI equivalents with the same bytes.
func ociLayerType(mt string) string {
	switch mt {
	case "", ocispec.MediaTypeImageLayer, mediaTypeDockerLayerTar:
		return ocispec.MediaTypeImageLayer
	case mediaTypeDockerLayerGzip, mediaTypeDockerForeignGzip:
		// A foreign layer whose blob is here is an ordinary gzip layer.
		return ocispec.MediaTypeImageLayerGzip
	}
	return mt
}

// Docker schema2 types a layer record may carry.
const (
	mediaTypeDockerLayerTar    = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeDockerLayerGzip   = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerForeignGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeDockerManifest    = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList        = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig      = "application/vnd.docker.container.image.v1+json"
)

// The archive's fixed names and the annotation containerd and Docker use
// for an image's full name.
const (
	archiveManifest     = "manifest.json"
	archiveRepositories = "repositories"
	archiveIndex        = "index.json"
	annotationImageName = "io.containerd.image.name"
)

func blobPath(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

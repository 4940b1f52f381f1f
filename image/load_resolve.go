package image

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"

	"berth/errdefs"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// loadImage is one image of an archive, resolved to stored blobs.
type loadImage struct {
	id     digest.Digest // the config's digest
	parent digest.Digest // manifest.json's Parent, if any
	config *Config
	layers []archiveEntry // one blob per diff ID, bottom first
	refs   []reference.NamedTagged
}

// resolve reads the archive's manifests. manifest.json wins when present:
// Docker writes it beside index.json, and it is all a legacy archive has.
func (l *loader) resolve(ctx context.Context) ([]*loadImage, error) {
	r := &resolver{l: l, byID: map[digest.Digest]*loadImage{}}
	var err error
	switch {
	case l.meta[archiveManifest] != nil:
		err = r.legacyManifest(ctx)
	case l.meta[archiveIndex] != nil:
		err = r.ociIndex(ctx)
	default:
		return nil, fmt.Errorf("load: archive has neither manifest.json nor index.json: %w", errdefs.ErrInvalidArgument)
	}
	return r.images, err
}

type resolver struct {
	l      *loader
	images []*loadImage
	byID   map[digest.Digest]*loadImage
}

func (r *resolver) legacyManifest(ctx context.Context) error {
	var items []manifestItem
	if err := json.Unmarshal(r.l.meta[archiveManifest], &items); err != nil {
		return fmt.Errorf("load: manifest.json: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	for i, item := range items {
		cfg, err := r.l.lookup(item.Config)
		if err != nil {
			return fmt.Errorf("load: manifest.json image %d: config: %w", i, err)
		}
		var layers []archiveEntry
		for _, name := range item.Layers {
			e, err := r.l.lookup(name)
			if err != nil {
				return fmt.Errorf("load: manifest.json image %d: layer: %w", i, err)
			}
			layers = append(layers, e)
		}
		var refs []reference.NamedTagged
		for _, tag := range item.RepoTags {
			ref, err := parseLoadTag(tag)
			if err != nil {
				return fmt.Errorf("load: manifest.json image %d: %w", i, err)
			}
			refs = append(refs, ref)
		}
		img, err := r.add(ctx, cfg, layers, refs)
		if err != nil {
			return err
		}
		if item.Parent.Validate() == nil {
			img.parent = item.Parent
		}
	}
	return nil
}

func parseLoadTag(tag string) (reference.NamedTagged, error) {
	ref, err := reference.ParseNormalizedNamed(tag)
	if err != nil {
		return nil, fmt.Errorf("tag %q: %w: %w", tag, err, errdefs.ErrInvalidArgument)
	}
	nt, ok := reference.TagNameOnly(ref).(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("tag %q: not a tag: %w", tag, errdefs.ErrInvalidArgument)
	}
	return nt, nil
}

// add checks an image's config against its layers and merges it with an
// earlier entry for the same image.
func (r *resolver) add(ctx context.Context, cfg archiveEntry, layers []archiveEntry, refs []reference.NamedTagged) (*loadImage, error) {
	raw, err := r.l.s.content.ReadAll(ctx, cfg.digest, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("load: image config %s: %w", cfg.digest, err)
	}
	c, err := ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("load: image %s: %w", cfg.digest, err)
	}
	if len(c.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("load: image %s: config lists %d layers, the manifest %d: %w", cfg.digest, len(c.RootFS.DiffIDs), len(layers), errdefs.ErrInvalidArgument)
	}
	img, ok := r.byID[cfg.digest]
	if !ok {
		img = &loadImage{id: cfg.digest, config: c, layers: layers}
		r.byID[cfg.digest] = img
		r.images = append(r.images, img)
	}
	for _, ref := range refs {
		if !hasRef(img.refs, ref) {
			img.refs = append(img.refs, ref)
		}
	}
	return img, nil
}

// ociIndex reads a plain OCI layout: each top-level descriptor is an
// image, or an index of which the host platform's manifest is taken.
func (r *resolver) ociIndex(ctx context.Context) error {
	var idx ocispec.Index
	if err := json.Unmarshal(r.l.meta[archiveIndex], &idx); err != nil {
		return fmt.Errorf("load: index.json: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	for _, desc := range idx.Manifests {
		refs, err := descriptorRefs(desc)
		if err != nil {
			return err
		}
		m, err := r.pickManifest(ctx, desc, 0)
		if err != nil {
			return err
		}
		if err := r.ociManifest(ctx, m, refs); err != nil {
			return err
		}
	}
	return nil
}

// descriptorRefs reads the names a top-level descriptor carries:
// containerd's full-name annotation, else an OCI ref name that is a full
// reference with a tag ("busybox:latest", not a bare "latest", which names
// no repository).
func descriptorRefs(desc ocispec.Descriptor) ([]reference.NamedTagged, error) {
	if name := desc.Annotations[annotationImageName]; name != "" {
		ref, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, fmt.Errorf("load: index.json: image name %q: %w: %w", name, err, errdefs.ErrInvalidArgument)
		}
		if nt, ok := reference.TagNameOnly(ref).(reference.NamedTagged); ok {
			return []reference.NamedTagged{nt}, nil
		}
		return nil, nil // a digest reference names no tag
	}
	if ref, err := reference.ParseNormalizedNamed(desc.Annotations[ocispec.AnnotationRefName]); err == nil {
		if nt, ok := ref.(reference.NamedTagged); ok {
			return []reference.NamedTagged{nt}, nil
		}
	}
	return nil, nil
}

// blobEntry finds the file the archive must hold under blobs/ for desc.
func (r *resolver) blobEntry(desc ocispec.Descriptor, what string) (archiveEntry, error) {
	if err := desc.Digest.Validate(); err != nil {
		return archiveEntry{}, fmt.Errorf("load: %s digest %q: %w: %w", what, desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	e, err := r.l.lookup(blobPath(desc.Digest))
	if err != nil {
		return e, fmt.Errorf("load: %s %s: %w", what, desc.Digest, err)
	}
	if e.size != desc.Size {
		return e, fmt.Errorf("load: %s %s: size %d in the archive, %d in its descriptor: %w", what, desc.Digest, e.size, desc.Size, errdefs.ErrInvalidArgument)
	}
	return e, nil
}

// readSmall reads a manifest or index blob, refusing oversized ones.
func (r *resolver) readSmall(ctx context.Context, desc ocispec.Descriptor, what string) ([]byte, error) {
	e, err := r.blobEntry(desc, what)
	if err != nil {
		return nil, err
	}
	if e.size > maxManifestSize {
		return nil, fmt.Errorf("load: %s %s: %d bytes, more than the %d allowed: %w", what, desc.Digest, e.size, maxManifestSize, errdefs.ErrInvalidArgument)
	}
	return r.l.s.content.ReadAll(ctx, e.digest, maxManifestSize)
}

// pickManifest follows indexes down to the manifest for the host platform.
func (r *resolver) pickManifest(ctx context.Context, desc ocispec.Descriptor, depth int) (ocispec.Descriptor, error) {
	if desc.MediaType == "" {
		mt, err := r.sniffMediaType(ctx, desc)
		if err != nil {
			return desc, err
		}
		desc.MediaType = mt
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		return desc, nil
	case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
	default:
		return desc, fmt.Errorf("load: descriptor %s: unsupported media type %q: %w", desc.Digest, desc.MediaType, errdefs.ErrInvalidArgument)
	}
	if depth >= maxIndexDepth {
		return desc, fmt.Errorf("load: index %s: nested more than %d deep: %w", desc.Digest, maxIndexDepth, errdefs.ErrInvalidArgument)
	}
	b, err := r.readSmall(ctx, desc, "index")
	if err != nil {
		return desc, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return desc, fmt.Errorf("load: index %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	// An archive may hold only some of an index's platforms (Docker's
	// containerd store saves what it has): take the best one present.
	candidates := hostManifests(idx.Manifests)
	if len(candidates) == 0 {
		return desc, fmt.Errorf("load: index %s: no manifest for %s/%s: %w", desc.Digest, runtime.GOOS, runtime.GOARCH, errdefs.ErrNotFound)
	}
	for _, c := range candidates {
		if _, err := r.l.lookup(blobPath(c.Digest)); err == nil {
			return r.pickManifest(ctx, c, depth+1)
		}
	}
	return r.pickManifest(ctx, candidates[0], depth+1) // fails naming the blob
}

// sniffMediaType reads what a descriptor without a media type points at,
// as some tools write index.json: the document's own mediaType, else an
// index if it lists manifests, else a manifest.
func (r *resolver) sniffMediaType(ctx context.Context, desc ocispec.Descriptor) (string, error) {
	b, err := r.readSmall(ctx, desc, "manifest")
	if err != nil {
		return "", err
	}
	var doc struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("load: manifest %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	switch {
	case doc.MediaType != "":
		return doc.MediaType, nil
	case doc.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	}
	return ocispec.MediaTypeImageManifest, nil
}

// hostManifests lists the entries that can run here, best first: the
// exact platform, then the right OS and architecture in another variant,
// then entries that state no platform. Attestations (unknown/unknown)
// never qualify.
func hostManifests(descs []ocispec.Descriptor) []ocispec.Descriptor {
	want := hostVariant()
	rank := func(d ocispec.Descriptor) int {
		p := d.Platform
		switch {
		case p == nil:
			return 1
		case p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH:
			return 0
		case p.Variant == want:
			return 3
		}
		return 2
	}
	var out []ocispec.Descriptor
	for _, d := range descs {
		if rank(d) > 0 {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b ocispec.Descriptor) int { return rank(b) - rank(a) })
	return out
}

func hostVariant() string {
	switch runtime.GOARCH {
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

// ociManifest reads an image manifest and its config.
func (r *resolver) ociManifest(ctx context.Context, desc ocispec.Descriptor, refs []reference.NamedTagged) error {
	b, err := r.readSmall(ctx, desc, "manifest")
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("load: manifest %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, mediaTypeDockerConfig:
	default:
		return fmt.Errorf("load: manifest %s: config type %q is not an image: %w", desc.Digest, m.Config.MediaType, errdefs.ErrInvalidArgument)
	}
	cfg, err := r.blobEntry(m.Config, "config")
	if err != nil {
		return err
	}
	var layers []archiveEntry
	for _, ld := range m.Layers {
		if !isLayerType(ld.MediaType) {
			return fmt.Errorf("load: manifest %s: layer %s: unsupported media type %q: %w", desc.Digest, ld.Digest, ld.MediaType, errdefs.ErrInvalidArgument)
		}
		e, err := r.blobEntry(ld, "layer")
		if err != nil {
			return err
		}
		layers = append(layers, e)
	}
	_, err = r.add(ctx, cfg, layers, refs)
	return err
}

func isLayerType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		mediaTypeDockerLayerTar, mediaTypeDockerLayerGzip, mediaTypeDockerForeignGzip,
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return true
	}
	return false
}

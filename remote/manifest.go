package remote

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
)

// Media types of Docker's registry dialect.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signd = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Bounds on what a registry may send, so a hostile one cannot exhaust
// memory or disk through a manifest.
const (
	MaxManifestSize  = 4 << 20
	MaxLayers        = 1000
	MaxIndexEntries  = 1000
	MaxBlobSize      = 1 << 40 // 1 TiB: more is a lie, not a layer
	acceptManifests  = MediaTypeDockerManifest + ", " + MediaTypeDockerManifestList + ", " + ocispec.MediaTypeImageManifest + ", " + ocispec.MediaTypeImageIndex
	maxTagsPages     = 10000
	maxTagsPageBytes = 16 << 20
)

// IsIndex reports whether mt is an OCI index or Docker manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports whether mt is an OCI or Docker schema2 image manifest.
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// sniffMediaType finds the media type of a manifest whose Content-Type is
// missing or generic, from its mediaType field or its shape.
func sniffMediaType(body []byte) string {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Config        json.RawMessage   `json:"config"`
		FSLayers      []json.RawMessage `json:"fsLayers"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.SchemaVersion == 1 || probe.FSLayers != nil:
		return mediaTypeDockerSchema1
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

func checkDescriptor(what string, d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("%s digest %q: %v: %w", what, d.Digest, err, errdefs.ErrInvalidArgument)
	}
	if d.Size < 0 || d.Size > MaxBlobSize {
		return fmt.Errorf("%s %s: size %d out of range: %w", what, d.Digest, d.Size, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ParseManifest decodes and bounds-checks an image manifest.
func ParseManifest(body []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if m.SchemaVersion != 2 {
		return m, fmt.Errorf("manifest: schemaVersion %d: %w", m.SchemaVersion, errdefs.ErrInvalidArgument)
	}
	if err := checkDescriptor("config", m.Config); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	if len(m.Layers) > MaxLayers {
		return m, fmt.Errorf("manifest: %d layers, more than %d: %w", len(m.Layers), MaxLayers, errdefs.ErrInvalidArgument)
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(fmt.Sprintf("layer %d", i), l); err != nil {
			return m, fmt.Errorf("manifest: %w", err)
		}
	}
	return m, nil
}

// ParseIndex decodes and bounds-checks an OCI index or Docker manifest list.
func ParseIndex(body []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return idx, fmt.Errorf("index: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(idx.Manifests) > MaxIndexEntries {
		return idx, fmt.Errorf("index: %d entries, more than %d: %w", len(idx.Manifests), MaxIndexEntries, errdefs.ErrInvalidArgument)
	}
	for i, d := range idx.Manifests {
		if err := checkDescriptor(fmt.Sprintf("entry %d", i), d); err != nil {
			return idx, fmt.Errorf("index: %w", err)
		}
		if d.Size > MaxManifestSize {
			return idx, fmt.Errorf("index: entry %d: manifest of %d bytes, more than %d: %w", i, d.Size, MaxManifestSize, errdefs.ErrInvalidArgument)
		}
	}
	return idx, nil
}

// verifyDigest checks body against want, computed with want's algorithm.
func verifyDigest(what string, body []byte, want digest.Digest) error {
	if err := want.Validate(); err != nil {
		return fmt.Errorf("%s: digest %q: %v: %w", what, want, err, errdefs.ErrInvalidArgument)
	}
	if got := want.Algorithm().FromBytes(body); got != want {
		return fmt.Errorf("%s: content digest %s does not match %s: %w", what, got, want, errdefs.ErrInvalidArgument)
	}
	return nil
}

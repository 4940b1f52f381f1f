package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"berth/archive"
	"berth/errdefs"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// ImportImage makes a one-layer image from a rootfs tar, as `docker import`.
// Everything the user gave is checked before a byte is stored; on any later
// failure the snapshot and blobs made so far are removed again.
func (s *Service) ImportImage(ctx context.Context, src io.Reader, opts ImportOptions) (string, error) {
	var ref reference.Named
	if opts.Ref != "" {
		var err error
		if ref, err = ParseReference(opts.Ref); err != nil {
			return "", err
		}
	}
	var cfg dockerspec.DockerOCIImageConfig
	if err := ApplyChanges(&cfg, opts.Changes); err != nil {
		return "", err
	}
	platform, err := parsePlatform(opts.Platform)
	if err != nil {
		return "", err
	}
	layer, err := s.ingestLayer(ctx, "", src)
	if err != nil {
		return "", err
	}
	defer layer.release(ctx)

	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + orDash(opts.Source)
	}
	now := time.Now().UTC()
	img := &Config{DockerOCIImage: dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created: &now, Platform: platform,
			RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.diffID}},
			History: []ocispec.History{{Created: &now, Comment: comment}},
		},
		Config: cfg,
	}, Comment: comment}
	id, err := s.storeImage(ctx, img, []*ingested{layer}, "", ref)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parsePlatform(p string) (ocispec.Platform, error) {
	host := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p == "" {
		return host, nil
	}
	parts := strings.Split(strings.ToLower(p), "/")
	if len(parts) < 1 || len(parts) > 3 || parts[0] == "" {
		return host, fmt.Errorf("invalid platform %q: %w", p, errdefs.ErrInvalidArgument)
	}
	out := ocispec.Platform{OS: parts[0], Architecture: host.Architecture}
	if len(parts) > 1 {
		out.Architecture = parts[1]
	}
	if len(parts) > 2 {
		out.Variant = parts[2]
	}
	if out.OS != "linux" {
		return host, fmt.Errorf("platform %q: only linux images are supported: %w", p, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// ingested is a layer extracted into an uncommitted snapshot whose blob is
// already in the content store.
type ingested struct {
	s      *Service
	key    string // the Active snapshot, until committed
	diffID digest.Digest
	size   int64 // tar bytes
}

// release removes the snapshot if it was never committed.
func (l *ingested) release(ctx context.Context) {
	if l.key != "" {
		l.s.sn.Remove(context.WithoutCancel(ctx), l.key)
	}
}

// ingestLayer reads a layer stream (any supported compression), keeps its
// uncompressed tar in the content store and extracts it on parent.
func (s *Service) ingestLayer(ctx context.Context, parent digest.Digest, src io.Reader) (*ingested, error) {
	plain, _, err := archive.DecompressStream(src)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	defer plain.Close()
	ref := randomKey("layer-")
	w, err := s.content.Writer(ctx, ref)
	if err != nil {
		return nil, err
	}
	tee := io.TeeReader(plain, w)
	key, err := s.extract(ctx, parent, tee)
	if err == nil {
		// The tar reader may stop before the stream's zero padding ends.
		_, err = io.Copy(io.Discard, tee)
	}
	if err != nil {
		w.Close()
		s.content.Abort(ctx, ref)
		if key != "" {
			s.sn.Remove(context.WithoutCancel(ctx), key)
		}
		return nil, err
	}
	l := &ingested{s: s, key: key, diffID: w.Digest(), size: w.Offset()}
	if err := w.Commit(ctx, -1, ""); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		l.release(ctx)
		s.content.Abort(ctx, ref)
		return nil, err
	}
	return l, nil
}

// storeImage commits the layers' snapshots, writes the config blob and
// records image, layers and tag in one transaction.
func (s *Service) storeImage(ctx context.Context, img *Config, layers []*ingested, parent digest.Digest, ref reference.Named) (digest.Digest, error) {
	raw, err := marshalConfig(img)
	if err != nil {
		return "", err
	}
	id, _, err := s.content.WriteBlob(ctx, randomKey("config-"), strings.NewReader(string(raw)), int64(len(raw)), "")
	if err != nil {
		return "", err
	}
	s.layerMu.RLock()
	defer s.layerMu.RUnlock()
	chains := chainIDs(img.RootFS.DiffIDs)
	var recs []layerRecord
	var total int64
	for i, l := range layers {
		chain := chains[len(chains)-len(layers)+i]
		if l.key != "" {
			if err := s.commitLayer(ctx, l.key, chain); err != nil {
				return "", err
			}
			l.key = ""
		}
		u, err := s.sn.Usage(ctx, chain.String())
		if err != nil {
			return "", err
		}
		rec := layerRecord{ChainID: chain, DiffID: l.diffID, Size: u.Size, Blob: l.diffID, BlobSize: l.size, MediaType: ocispec.MediaTypeImageLayer}
		if i > 0 || len(chains) > len(layers) {
			rec.Parent = chains[len(chains)-len(layers)+i-1]
		}
		recs = append(recs, rec)
		total += u.Size
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		st, err := loadState(tx)
		if err != nil {
			return err
		}
		for _, c := range chains[:len(chains)-len(layers)] {
			total += st.layers[c].Size
		}
		for _, r := range recs {
			if err := putJSON(tx.Bucket(bucketLayers), r.ChainID.String(), r); err != nil {
				return err
			}
		}
		r := record{ID: id, Created: img.created(), Parent: parent, ChainIDs: chains, Size: total, Labels: img.Config.Labels}
		st.images[id] = r
		if err := putJSON(tx.Bucket(bucketImages), id.String(), r); err != nil {
			return err
		}
		if ref != nil {
			return setTag(tx, st, ref.String(), id)
		}
		return nil
	})
	return id, err
}

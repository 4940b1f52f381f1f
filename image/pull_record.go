package image

import (
	"bytes"
	"context"
	"fmt"

	"berth/errdefs"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// pinLayers protects chains from layer GC for the duration of a pull and
// reports which of them exist already. Both happen under layerMu, so GC
// cannot remove a layer between "it exists" and "it is pinned".
func (s *Service) pinLayers(ctx context.Context, chains []digest.Digest) (func(), []bool, error) {
	s.layerMu.RLock()
	defer s.layerMu.RUnlock()
	unpin := s.dist.pin(chains)
	present := make([]bool, len(chains))
	for i, c := range chains {
		ok, err := s.layerExists(ctx, c)
		if err != nil {
			unpin()
			return nil, nil, err
		}
		present[i] = ok
	}
	return unpin, present, nil
}

// recordPulled stores the config blob and makes the image visible: its
// record, the tag ref names (if any) and the RepoDigest name@repoDigest.
// It reports whether ref now names a different image than before.
func (s *Service) recordPulled(ctx context.Context, ref reference.Named, repoDigest, id digest.Digest, raw []byte, cfg *Config) (bool, error) {
	if _, _, err := s.content.WriteBlob(ctx, randomKey("pull-config-"), bytes.NewReader(raw), int64(len(raw)), id); err != nil {
		return false, fmt.Errorf("image config: %w", err)
	}
	digestRef, err := reference.WithDigest(reference.TrimNamed(ref), repoDigest)
	if err != nil {
		return false, fmt.Errorf("repo digest: %w", invalidRef(err))
	}
	chains := chainIDs(cfg.RootFS.DiffIDs)
	s.layerMu.RLock()
	defer s.layerMu.RUnlock()
	fresh := true
	err = s.db.Update(func(tx *bolt.Tx) error {
		st, err := loadState(tx)
		if err != nil {
			return err
		}
		var size int64
		for _, c := range chains {
			l, ok := st.layers[c]
			if !ok {
				return fmt.Errorf("image %s: layer %s vanished during the pull: %w", shortID(id), c, errdefs.ErrConflict)
			}
			size += l.Size
		}
		r, exists := st.images[id]
		if !exists {
			r = record{ID: id, Created: cfg.created(), ChainIDs: chains, Size: size, Labels: cfg.Config.Labels}
			st.images[id] = r
			if err := putJSON(tx.Bucket(bucketImages), id.String(), r); err != nil {
				return err
			}
		}
		key := ref.String()
		if _, tagged := ref.(reference.Tagged); !tagged {
			key = digestRef.String()
		}
		fresh = st.tags[key] != id
		if err := tx.Bucket(bucketTags).Put([]byte(digestRef.String()), []byte(id)); err != nil {
			return err
		}
		st.tags[digestRef.String()] = id
		if _, tagged := ref.(reference.Tagged); tagged && fresh {
			return setTag(tx, st, key, id)
		}
		return nil
	})
	return fresh, err
}

package image

import (
	"context"
	"errors"
	"fmt"

	"berth/errdefs"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// record writes layers, images and tags in one transaction. It holds
// layerMu shared, so layer GC cannot remove a layer it is about to
// reference, and checks that every snapshot is still there.
func (l *loader) record(ctx context.Context, imgs []*loadImage) ([]LoadedImage, error) {
	l.s.layerMu.RLock()
	defer l.s.layerMu.RUnlock()
	st, err := l.s.view()
	if err != nil {
		return nil, err
	}
	fresh := map[digest.Digest]layerRecord{}
	for _, img := range imgs {
		if err := l.describeLayers(ctx, st, img, fresh); err != nil {
			return nil, err
		}
	}
	var out []LoadedImage
	err = l.s.db.Update(func(tx *bolt.Tx) error {
		out = nil
		st, err := loadState(tx)
		if err != nil {
			return err
		}
		for c, rec := range fresh {
			if _, ok := st.layers[c]; ok {
				continue
			}
			if err := putJSON(tx.Bucket(bucketLayers), c.String(), rec); err != nil {
				return err
			}
			st.layers[c] = rec
		}
		fresh := map[digest.Digest]bool{}
		for _, img := range imgs {
			if _, ok := st.images[img.id]; !ok {
				fresh[img.id] = true
			}
			li, err := recordImage(tx, st, img)
			if err != nil {
				return err
			}
			out = append(out, li)
		}
		return linkParents(tx, st, imgs, fresh)
	})
	if err != nil {
		return nil, fmt.Errorf("load: record images: %w", err)
	}
	return out, nil
}

// describeLayers builds the records of img's layers that have none yet.
func (l *loader) describeLayers(ctx context.Context, st *state, img *loadImage, fresh map[digest.Digest]layerRecord) error {
	diffIDs := img.config.RootFS.DiffIDs
	chains := chainIDs(diffIDs)
	for i, chain := range chains {
		if _, err := l.s.sn.Stat(ctx, chain.String()); err != nil {
			return fmt.Errorf("load: layer %s: snapshot: %w", diffIDs[i], err)
		}
		if _, ok := st.layers[chain]; ok {
			continue
		}
		if _, ok := fresh[chain]; ok {
			continue
		}
		u, err := l.s.sn.Usage(ctx, chain.String())
		if err != nil {
			return fmt.Errorf("load: layer %s: %w", diffIDs[i], err)
		}
		bi, err := l.s.content.Info(ctx, diffIDs[i])
		if err != nil {
			return fmt.Errorf("load: layer %s: %w", diffIDs[i], err)
		}
		rec := layerRecord{ChainID: chain, DiffID: diffIDs[i], Size: u.Size, Blob: diffIDs[i], BlobSize: bi.Size, MediaType: ocispec.MediaTypeImageLayer}
		if i > 0 {
			rec.Parent = chains[i-1]
		}
		fresh[chain] = rec
	}
	return nil
}

// recordImage adds img's record if it is new and points its tags at it.
func recordImage(tx *bolt.Tx, st *state, img *loadImage) (LoadedImage, error) {
	li := LoadedImage{ID: img.id}
	if _, ok := st.images[img.id]; !ok {
		chains := chainIDs(img.config.RootFS.DiffIDs)
		var size int64
		for _, c := range chains {
			size += st.layers[c].Size
		}
		r := record{ID: img.id, Created: img.config.created(), ChainIDs: chains, Size: size, Labels: img.config.Config.Labels}
		if err := putJSON(tx.Bucket(bucketImages), img.id.String(), r); err != nil {
			return li, err
		}
		st.images[img.id] = r
	}
	for _, ref := range img.refs {
		key, name := ref.String(), reference.FamiliarString(ref)
		if prev, ok := st.tags[key]; ok && prev != img.id {
			if li.Replaced == nil {
				li.Replaced = map[string]digest.Digest{}
			}
			li.Replaced[name] = prev
		}
		if err := setTag(tx, st, key, img.id); err != nil {
			return li, err
		}
		li.Tags = append(li.Tags, name)
	}
	return li, nil
}

// linkParents restores the parent links manifest.json records, for new
// images whose parent is in the store (loaded now or before).
func linkParents(tx *bolt.Tx, st *state, imgs []*loadImage, fresh map[digest.Digest]bool) error {
	for _, img := range imgs {
		if !fresh[img.id] || img.parent == "" || img.parent == img.id {
			continue
		}
		if _, ok := st.images[img.parent]; !ok {
			continue
		}
		r := st.images[img.id]
		r.Parent = img.parent
		st.images[img.id] = r
		if err := putJSON(tx.Bucket(bucketImages), img.id.String(), r); err != nil {
			return err
		}
	}
	return nil
}

// rollback removes what a failed load added. A blob that some record uses
// by now (a concurrent load of the same content finished first) stays.
func (l *loader) rollback(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	l.dropSnapshots(ctx)
	l.dropBlobs(ctx, nil)
}

// dropSnapshots removes the layers this load committed, top first, unless
// a concurrent pull has recorded one as its own meanwhile. It holds layerMu
// exclusively, as layer GC does, so no record appears while it decides.
func (l *loader) dropSnapshots(ctx context.Context) {
	if len(l.snaps) == 0 {
		return
	}
	l.s.layerMu.Lock()
	defer l.s.layerMu.Unlock()
	st, err := l.s.view()
	if err != nil {
		l.s.log.Warn("load rollback", "err", err)
		return
	}
	for i := len(l.snaps) - 1; i >= 0; i-- {
		if _, ok := st.layers[digest.Digest(l.snaps[i])]; ok {
			continue
		}
		if err := l.s.sn.Remove(ctx, l.snaps[i]); err != nil && !errdefs.NotFound(err) {
			l.s.log.Warn("load rollback", "snapshot", l.snaps[i], "err", err)
		}
	}
}

// dropScratch removes the blobs a successful load needed only on the way:
// manifests, compressed layers, files no manifest named.
func (l *loader) dropScratch(ctx context.Context, imgs []*loadImage) {
	keep := map[digest.Digest]bool{}
	for _, img := range imgs {
		keep[img.id] = true
		for _, d := range img.config.RootFS.DiffIDs {
			keep[d] = true
		}
	}
	l.dropBlobs(context.WithoutCancel(ctx), keep)
}

func (l *loader) dropBlobs(ctx context.Context, keep map[digest.Digest]bool) {
	st, err := l.s.view()
	if err != nil {
		l.s.log.Warn("load cleanup", "err", err)
		return
	}
	used := map[digest.Digest]bool{}
	for id := range st.images {
		used[id] = true
	}
	for _, rec := range st.layers {
		used[rec.Blob] = true
	}
	for d := range l.added {
		if keep[d] || used[d] {
			continue
		}
		if err := l.s.content.Delete(ctx, d); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			l.s.log.Warn("load cleanup", "blob", d, "err", err)
		}
	}
}

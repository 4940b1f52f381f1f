package image

import (
	"context"
	"errors"
	"fmt"
	"io"

	"berth/archive"
	"berth/errdefs"
	"berth/snapshot"

	"golang.org/x/sync/errgroup"
)

// diffPreparer is a snapshotter whose layers are independent directories
// (overlay2): a layer's changeset can be unpacked before its parent layer
// exists and attached to the parent when it is committed. A pull then
// unpacks every layer while it downloads, instead of each one after the
// layer below it is committed.
type diffPreparer interface {
	// PrepareDiff returns a new directory, outside any snapshot record,
	// to unpack a changeset into with overlay whiteouts.
	PrepareDiff(ctx context.Context) (string, error)
	// CommitDiff makes dir the committed snapshot name on parent,
	// through the Active snapshot key.
	CommitDiff(ctx context.Context, dir, key, name, parent string) error
	// SyncDiff makes dir durable ahead of CommitDiff.
	SyncDiff(ctx context.Context, dir string) error
	// DiffUsage is the Usage dir will have once committed.
	DiffUsage(ctx context.Context, dir string) (snapshot.Usage, error)
	DiscardDiff(dir string) error
}

// unpacked is where a layer's files were written before it is committed:
// an Active snapshot on the parent layer (key), or a detached diff of a
// diffPreparer (dir). The zero value is "not unpacked yet".
type unpacked struct {
	key   string
	dir   string
	usage *snapshot.Usage // measured before the commit, if it was
}

func (u unpacked) none() bool { return u.key == "" && u.dir == "" }

// detachable says whether the layer can be unpacked before its parent
// layer is committed.
func (j *layerJob) detachable() bool {
	_, ok := j.s.sn.(diffPreparer)
	return ok && !j.parentReady()
}

// unpackTarget prepares where the layer is unpacked now: onto its parent
// when the parent layer is committed (or there is none), else into a
// detached diff when the snapshotter allows. It returns a nil apply when
// the layer has to wait for its parent.
func (j *layerJob) unpackTarget(ctx context.Context) (unpacked, func(context.Context, io.Reader) error, error) {
	if j.parentReady() {
		key := randomKey("extract-")
		mounts, err := j.s.sn.Prepare(ctx, key, j.spec.parent.String())
		if err != nil {
			return unpacked{}, nil, fmt.Errorf("layer on %s: %w", shortOr(j.spec.parent), err)
		}
		return unpacked{key: key}, func(ctx context.Context, r io.Reader) error { return applyMounts(ctx, mounts, r) }, nil
	}
	dp, ok := j.s.sn.(diffPreparer)
	if !ok {
		return unpacked{}, nil, nil
	}
	dir, err := dp.PrepareDiff(ctx)
	if err != nil {
		return unpacked{}, nil, fmt.Errorf("layer %s: %w", shortID(j.spec.desc.Digest), err)
	}
	return unpacked{dir: dir}, func(ctx context.Context, r io.Reader) error {
		_, err := archive.Apply(ctx, dir, r, archive.ApplyOptions{Mode: archive.WhiteoutOverlay})
		return err
	}, nil
}

// seal makes a detached diff durable and measures it while the layer
// waits for its parent, so that neither happens after the parent's
// commit, on the chain every layer above waits for.
func (j *layerJob) seal(ctx context.Context, u *unpacked) error {
	dp, ok := j.s.sn.(diffPreparer)
	if u.dir == "" || !ok {
		return nil
	}
	// The walk is stat calls and the sync mostly waits for the disk:
	// side by side, the walk costs the layer nothing.
	var usage snapshot.Usage
	var g errgroup.Group
	g.Go(func() error { return dp.SyncDiff(ctx, u.dir) })
	g.Go(func() (err error) {
		usage, err = dp.DiffUsage(ctx, u.dir)
		return err
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("layer %s: %w", shortID(j.spec.desc.Digest), err)
	}
	u.usage = &usage
	return nil
}

// discard removes what u holds, if anything.
func (j *layerJob) discard(ctx context.Context, u unpacked) {
	switch {
	case u.key != "":
		j.s.sn.Remove(ctx, u.key)
	case u.dir != "":
		if dp, ok := j.s.sn.(diffPreparer); ok {
			dp.DiscardDiff(u.dir)
		}
	}
}

// commitUnpacked makes u the committed layer spec.chain, or drops it when
// that layer exists already (two pulls of one layer). The caller holds
// layerMu shared until the layer is recorded.
func (s *Service) commitUnpacked(ctx context.Context, u unpacked, spec layerSpec) error {
	if u.key != "" {
		return s.commitLayer(ctx, u.key, spec.chain)
	}
	dp, ok := s.sn.(diffPreparer)
	if u.dir == "" || !ok {
		return fmt.Errorf("layer %s: nothing unpacked to commit: %w", shortID(spec.chain), errdefs.ErrFailedPrecondition)
	}
	if _, err := s.sn.Stat(ctx, spec.chain.String()); err == nil {
		return dp.DiscardDiff(u.dir)
	} else if !errdefs.NotFound(err) {
		return err
	}
	err := dp.CommitDiff(ctx, u.dir, randomKey("extract-"), spec.chain.String(), spec.parent.String())
	if err != nil {
		return fmt.Errorf("layer %s: %w", spec.chain, errors.Join(err, dp.DiscardDiff(u.dir)))
	}
	return nil
}

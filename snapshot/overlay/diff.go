package overlay

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"berth/errdefs"
	"berth/snapshot"
	"berth/snapshot/storage"
)

// Detached diffs: an overlay layer is its upperdir alone, whiteouts and
// opaque marks included, and never reads its lowers while it is written.
// So a layer's changeset can be unpacked before its parent exists (a pull
// unpacks every layer while it downloads instead of one after the other)
// and attached to the parent only when it is committed:
//
//	PrepareDiff          staging/<tmp>/fs, work    no record; the caller writes fs
//	SyncDiff (optional)  make it durable now, while the parent is still
//	                     on its way; the caller writes nothing more
//	CommitDiff           sync (unless SyncDiff did), rename to
//	                     snapshots/<id>, record Active on parent, commit
//	                     under its name
//	DiscardDiff          remove the staged directory
//
// A crash before CommitDiff's rename leaves a staged directory, which New
// removes; a crash between the two records leaves an Active snapshot under
// the caller's key, which the caller removes as it removes any Active
// snapshot it left (the image store's stray "extract-" snapshots).

// PrepareDiff creates a staged snapshot directory and returns its fs
// directory, into which the caller writes a layer's changeset as an
// overlay upperdir (0/0 character devices for whiteouts,
// trusted.overlay.opaque for opaque directories).
func (s *Snapshotter) PrepareDiff(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	id, err := storage.NewID()
	if err != nil {
		return "", err
	}
	staged, err := s.dirs.Stage()
	if err != nil {
		return "", err
	}
	if err := makeSnapshotDirs(staged, id); err != nil {
		return "", errors.Join(fmt.Errorf("detached diff: %w", err), s.dirs.DiscardStaged(staged))
	}
	return filepath.Join(staged, "fs"), nil
}

// CommitDiff makes the directory dir returned by PrepareDiff the Committed
// snapshot name whose parent is parent ("" for a base layer), passing
// through the Active snapshot key. Its data is on disk before either record
// is written (see sync.go). dir is consumed on success; on failure the
// caller still owns it and discards it with DiscardDiff (it is gone only
// when the failure came after it was published, and DiscardDiff then has
// nothing to do).
func (s *Snapshotter) CommitDiff(ctx context.Context, dir, key, name, parent string) error {
	staged, err := s.stagedOf(dir)
	if err != nil {
		return err
	}
	if err := s.ms.Check(ctx, key, parent); err != nil {
		return err
	}
	if _, err := s.ms.Stat(ctx, name); err == nil {
		return fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
	} else if !errdefs.NotFound(err) {
		return err
	}
	if err := s.checkDepth(ctx, parent); err != nil {
		return err
	}
	id, err := storage.NewID()
	if err != nil {
		return err
	}
	if !s.takeSynced(staged) {
		if err := s.syncTree(ctx, dir, staged); err != nil {
			return fmt.Errorf("sync detached diff for %s: %w", name, err)
		}
	}
	if err := s.dirs.Publish(staged, id); err != nil {
		return err
	}
	if _, err := s.ms.Create(ctx, id, key, parent, snapshot.KindActive); err != nil {
		return errors.Join(err, s.dirs.Discard(id))
	}
	if _, err := s.ms.Commit(ctx, name, key); err != nil {
		if _, rerr := s.ms.Remove(context.WithoutCancel(ctx), key); rerr != nil {
			return errors.Join(err, rerr) // the record stays: the caller removes key
		}
		return errors.Join(err, s.dirs.Discard(id))
	}
	return nil
}

// SyncDiff makes dir durable before CommitDiff, which then skips its
// sync: a pull syncs each layer as soon as it is unpacked, in parallel,
// instead of one after the other as the layers are committed in order.
// The caller must not change dir afterwards.
func (s *Snapshotter) SyncDiff(ctx context.Context, dir string) error {
	staged, err := s.stagedOf(dir)
	if err != nil {
		return err
	}
	if err := s.syncTree(ctx, dir, staged); err != nil {
		return fmt.Errorf("sync detached diff: %w", err)
	}
	s.mu.Lock()
	s.synced[staged] = true
	s.mu.Unlock()
	return nil
}

// takeSynced reports whether SyncDiff made staged durable, and forgets it.
func (s *Snapshotter) takeSynced(staged string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.synced[staged]
	delete(s.synced, staged)
	return ok
}

// DiffUsage is what Usage will report for dir once it is committed: a
// pull measures a layer while it waits for the layer below, not after.
func (s *Snapshotter) DiffUsage(ctx context.Context, dir string) (snapshot.Usage, error) {
	if _, err := s.stagedOf(dir); err != nil {
		return snapshot.Usage{}, err
	}
	return storage.DiskUsage(ctx, dir)
}

// DiscardDiff removes a directory returned by PrepareDiff. Discarding one
// that CommitDiff published, or one already discarded, does nothing.
func (s *Snapshotter) DiscardDiff(dir string) error {
	staged, err := s.stagedOf(dir)
	if err != nil {
		return err
	}
	s.takeSynced(staged)
	return s.dirs.DiscardStaged(staged)
}

// stagedOf checks that dir is the fs directory of a staged snapshot of this
// snapshotter and returns the staged directory.
func (s *Snapshotter) stagedOf(dir string) (string, error) {
	staged := filepath.Dir(dir)
	if filepath.Base(dir) != "fs" || filepath.Dir(staged) != filepath.Join(s.root, "staging") {
		return "", fmt.Errorf("detached diff %q: not a directory of PrepareDiff: %w", dir, errdefs.ErrInvalidArgument)
	}
	return staged, nil
}

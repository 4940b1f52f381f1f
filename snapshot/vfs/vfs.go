// Package vfs is the vfs snapshotter: every Active snapshot is a full copy
// of its parent, so it works on any filesystem and needs no union mount,
// at the price of disk and time per container. Files are reflinked where
// the filesystem supports it (btrfs, xfs), which makes the copy cheap there.
//
// On disk, under the root given to New (see storage.Dirs for staging and
// trash):
//
//	<root>/snapshots/<id>/fs   the snapshot's complete tree
//
// Metadata lives in the shared bbolt database under snapshots/vfs/ (see
// storage.MetaStore).
//
// Mounts returned: an Active snapshot is a rw bind of its own fs. A View
// is a ro bind of its parent's fs (committed layers are immutable, so a
// View needs no copy), or of its own empty fs when it has no parent.
package vfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"go.etcd.io/bbolt"

	"berth/errdefs"
	"berth/fscopy"
	"berth/mount"
	"berth/snapshot"
	"berth/snapshot/storage"
)

// DriverName is the name users and the metadata bucket know this driver by.
const DriverName = "vfs"

// Snapshotter implements snapshot.Snapshotter and snapshot.Describer with
// plain directory copies.
type Snapshotter struct {
	dirs      *storage.Dirs
	ms        *storage.MetaStore
	backingFS string
}

var (
	_ snapshot.Snapshotter = (*Snapshotter)(nil)
	_ snapshot.Describer   = (*Snapshotter)(nil)
)

// New opens the vfs snapshotter rooted at root, with its metadata in db
// (the daemon's database, which the caller keeps and closes), and removes
// what an earlier crash left half-done.
func New(ctx context.Context, root string, db *bbolt.DB) (*Snapshotter, error) {
	dirs, err := storage.NewDirs(root)
	if err != nil {
		return nil, err
	}
	fsName, err := storage.FilesystemName(root)
	if err != nil {
		return nil, err
	}
	ms, err := storage.NewMetaStore(db, DriverName)
	if err != nil {
		return nil, err
	}
	ids, err := ms.IDs(ctx)
	if err != nil {
		return nil, err
	}
	if err := dirs.Cleanup(ctx, ids); err != nil {
		return nil, err
	}
	return &Snapshotter{dirs: dirs, ms: ms, backingFS: fsName}, nil
}

// Stat returns the Info of key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	return s.ms.Stat(ctx, key)
}

// Walk calls fn for every snapshot.
func (s *Snapshotter) Walk(ctx context.Context, fn snapshot.WalkFunc) error {
	return s.ms.Walk(ctx, fn)
}

// Usage is the disk used by key's own tree; for an Active snapshot that
// includes the copy of its parents.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	snap, err := s.ms.Get(ctx, key)
	if err != nil {
		return snapshot.Usage{}, err
	}
	return storage.DiskUsage(ctx, s.fsDir(snap.ID))
}

// Prepare creates an Active snapshot holding a copy of parent.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent, opts)
}

// View creates a read-only View of parent.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent, opts)
}

// create copies outside any transaction into a staging directory, publishes
// it, and only then writes the record, which re-checks the key and parent:
// a parent removed during the copy makes the record fail and the copy is
// discarded.
func (s *Snapshotter) create(ctx context.Context, kind snapshot.Kind, key, parent string, opts []snapshot.Opt) ([]mount.Mount, error) {
	if err := s.ms.Check(ctx, key, parent); err != nil {
		return nil, err
	}
	id, err := storage.NewID()
	if err != nil {
		return nil, err
	}
	staged, err := s.dirs.Stage()
	if err != nil {
		return nil, err
	}
	if err := s.populate(ctx, kind, parent, filepath.Join(staged, "fs")); err != nil {
		// A parent removed during the copy shows up as files vanishing
		// under it; the metadata says what happened.
		if cerr := s.ms.Check(ctx, key, parent); cerr != nil {
			err = cerr
		} else {
			err = fmt.Errorf("snapshot %q: %w", key, err)
		}
		return nil, errors.Join(err, s.dirs.DiscardStaged(staged))
	}
	if err := s.dirs.Publish(staged, id); err != nil {
		return nil, errors.Join(err, s.dirs.DiscardStaged(staged))
	}
	snap, err := s.ms.Create(ctx, id, key, parent, kind, opts...)
	if err != nil {
		return nil, errors.Join(err, s.dirs.Discard(id))
	}
	return s.mounts(snap), nil
}

func (s *Snapshotter) populate(ctx context.Context, kind snapshot.Kind, parent, fs string) error {
	if parent == "" || kind == snapshot.KindView {
		return os.Mkdir(fs, 0o755)
	}
	p, err := s.ms.Get(ctx, parent)
	if err != nil {
		return err
	}
	return fscopy.Tree(ctx, s.fsDir(p.ID), fs)
}

// Mounts returns the mounts of an Active snapshot or View.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	snap, err := s.ms.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if snap.Kind == snapshot.KindCommitted {
		return nil, fmt.Errorf("mounts of snapshot %q: committed snapshots are not mounted, View them: %w",
			key, errdefs.ErrFailedPrecondition)
	}
	return s.mounts(snap), nil
}

// Commit makes the Active snapshot key the Committed snapshot name, once
// its data is on disk (storage.Dirs.Sync).
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshot.Opt) error {
	snap, err := s.ms.Get(ctx, key)
	if err != nil {
		return err
	}
	if snap.Kind == snapshot.KindActive {
		if err := s.dirs.Sync(snap.ID); err != nil {
			return err
		}
	}
	_, err = s.ms.Commit(ctx, name, key, opts...)
	return err
}

// Remove deletes a snapshot without children, record first (see storage).
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	snap, err := s.ms.Remove(ctx, key)
	if err != nil {
		return err
	}
	return s.dirs.Discard(snap.ID)
}

// Close releases nothing: the database belongs to the caller.
func (s *Snapshotter) Close() error { return nil }

// Status reports the driver for `docker info`.
func (s *Snapshotter) Status(ctx context.Context) snapshot.Status {
	layers := 0
	err := s.ms.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Kind == snapshot.KindCommitted {
			layers++
		}
		return nil
	})
	details := [][2]string{{"Backing Filesystem", s.backingFS}}
	if err == nil {
		details = append(details, [2]string{"Layers", strconv.Itoa(layers)})
	}
	return snapshot.Status{Driver: DriverName, Details: details}
}

func (s *Snapshotter) fsDir(id string) string { return filepath.Join(s.dirs.Path(id), "fs") }

func (s *Snapshotter) mounts(snap storage.Snapshot) []mount.Mount {
	if snap.Kind == snapshot.KindActive {
		return []mount.Mount{{Type: "bind", Source: s.fsDir(snap.ID), Options: []string{"rbind", "rw"}}}
	}
	src := s.fsDir(snap.ID)
	if len(snap.ParentIDs) > 0 {
		src = s.fsDir(snap.ParentIDs[0])
	}
	return []mount.Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}
}

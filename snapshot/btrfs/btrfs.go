// Package btrfs is the btrfs snapshotter: every snapshot is a btrfs
// subvolume, and a child (a layer on its parent, a container on its image)
// is a snapshot of its parent's subvolume. A snapshot costs O(1) whatever
// the layer's size, and a write into a file inherited from a parent copies
// only the blocks written, not the file (block-level copy-on-write, where
// overlay2 copies the whole file up on its first write).
//
// The root given to New must be on btrfs. On disk (see storage.Dirs for
// staging and trash):
//
//	<root>/snapshots/<id>/fs   a subvolume: an empty one for a snapshot
//	                           without parent, else a snapshot of the
//	                           parent's fs; read-only once committed and
//	                           for a View
//
// Metadata lives in the shared bbolt database under snapshots/btrfs/ (see
// storage.MetaStore). A subvolume appears in staging and is published by
// renaming its directory; it is destroyed with one ioctl before its
// directory goes, so a crash never leaves half a tree.
//
// Mounts returned: an Active snapshot is a rw bind of its fs, a View a ro
// bind of its fs. Committed layers are read-only subvolumes, so nothing,
// not even a bind someone made writable, can change a layer under its
// children.
//
// Usage is what a snapshot wrote itself: the data extents added after it
// was snapshotted from its parent (all of them for a snapshot without
// parent), each counted once at its size on disk. Extents shared with the
// parent are not counted, so a container that changed one byte of a 1 GiB
// file uses a few KiB, not 1 GiB as `du` on its directory would say (du
// counts shared extents in every tree that references them). See
// usageSince for the details.
package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"go.etcd.io/bbolt"

	"berth/errdefs"
	"berth/mount"
	"berth/snapshot"
	"berth/snapshot/storage"
)

// DriverName is the name users and the metadata bucket know this driver by.
const DriverName = "btrfs"

// Snapshotter implements snapshot.Snapshotter and snapshot.Describer with
// btrfs subvolumes.
type Snapshotter struct {
	dirs  *storage.Dirs
	ms    *storage.MetaStore
	dtype bool
	// commitMu makes setting a subvolume read-only and recording the
	// commit one step: a racing Commit of the same key that loses must
	// not make the winner's layer writable again when it reverts.
	commitMu sync.Mutex
}

var (
	_ snapshot.Snapshotter = (*Snapshotter)(nil)
	_ snapshot.Describer   = (*Snapshotter)(nil)
)

// New opens the btrfs snapshotter rooted at root, with its metadata in db
// (the daemon's database, which the caller keeps and closes). It fails with
// ErrFailedPrecondition when root is not on btrfs or subvolumes cannot be
// made there, and repairs what an earlier crash left half-done.
func New(ctx context.Context, root string, db *bbolt.DB) (*Snapshotter, error) {
	if err := checkFilesystem(root); err != nil {
		return nil, err
	}
	dirs, err := storage.NewDirs(root)
	if err != nil {
		return nil, err
	}
	if err := probe(dirs); err != nil {
		return nil, fmt.Errorf("btrfs storage driver on %s: %w: %w", root, err, errdefs.ErrFailedPrecondition)
	}
	dtype, err := storage.SupportsDType(root)
	if err != nil {
		return nil, err
	}
	ms, err := storage.NewMetaStore(db, DriverName)
	if err != nil {
		return nil, err
	}
	s := &Snapshotter{dirs: dirs, ms: ms, dtype: dtype}
	if err := s.recover(ctx, root); err != nil {
		return nil, err
	}
	return s, nil
}

// checkFilesystem looks at root, or its nearest existing parent, so that
// a wrong data root fails before anything is created on it.
func checkFilesystem(root string) error {
	dir := root
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	name, err := storage.FilesystemName(dir)
	if err != nil {
		return err
	}
	if name != "btrfs" {
		return fmt.Errorf("btrfs storage driver: %s is on %s, not btrfs; put the data root on a btrfs filesystem "+
			"(docs/storage-drivers.md shows how, with a loop-mounted image file) or use overlay2: %w",
			dir, name, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// probe creates and destroys one subvolume, which needs CAP_SYS_ADMIN and a
// writable filesystem, so that New fails rather than the first pull.
func probe(dirs *storage.Dirs) error {
	staged, err := dirs.Stage()
	if err != nil {
		return err
	}
	sub := filepath.Join(staged, "fs")
	err = createSubvolume(sub)
	if err == nil {
		err = destroySubvolume(sub)
	}
	return errors.Join(err, dirs.DiscardStaged(staged))
}

// recover destroys subvolumes that no record names (staged ones, and
// published ones whose record a crash prevented), then lets Dirs remove the
// directories, and puts every recorded subvolume in the mode its kind needs
// (a crash may come between setting read-only and recording a commit).
func (s *Snapshotter) recover(ctx context.Context, root string) error {
	ids, err := s.ms.IDs(ctx)
	if err != nil {
		return err
	}
	var stray []string
	for _, sub := range []string{"staging", "trash", "snapshots"} {
		entries, err := os.ReadDir(filepath.Join(root, sub))
		if err != nil {
			return fmt.Errorf("clean %s: %w", sub, err)
		}
		for _, e := range entries {
			if _, known := ids[e.Name()]; sub == "snapshots" && known {
				continue
			}
			stray = append(stray, filepath.Join(root, sub, e.Name()))
		}
	}
	for _, dir := range stray {
		if err := destroyAll(dir); err != nil {
			return fmt.Errorf("clean snapshot root: %w", err)
		}
	}
	if err := s.dirs.Cleanup(ctx, ids); err != nil {
		return err
	}
	return s.ms.Walk(ctx, func(ctx context.Context, info snapshot.Info) error {
		snap, err := s.ms.Get(ctx, info.Name)
		if err != nil {
			return err
		}
		return setReadOnly(s.fsDir(snap.ID), snap.Kind != snapshot.KindActive)
	})
}

// destroyAll destroys dir if it is a subvolume, else every subvolume
// below it.
func destroyAll(dir string) error {
	sub, err := isSubvolume(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if sub {
		return destroySubvolume(dir)
	}
	return destroyNested(dir)
}

// Stat returns the Info of key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	return s.ms.Stat(ctx, key)
}

// Walk calls fn for every snapshot.
func (s *Snapshotter) Walk(ctx context.Context, fn snapshot.WalkFunc) error {
	return s.ms.Walk(ctx, fn)
}

// Usage is the disk that key wrote itself, not sharing with its parent;
// see the package doc.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	snap, err := s.ms.Get(ctx, key)
	if err != nil {
		return snapshot.Usage{}, err
	}
	u, err := subvolumeUsage(ctx, s.fsDir(snap.ID), len(snap.ParentIDs) == 0)
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("snapshot %q: %w", key, err)
	}
	return u, nil
}

// Prepare creates an Active snapshot: a writable snapshot of parent, or an
// empty subvolume.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent, opts)
}

// View creates a read-only snapshot of parent.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent, opts)
}

// create builds the subvolume in staging, publishes it, and only then
// writes the record, which re-checks key and parent: a parent removed in
// the meantime makes the record fail and the subvolume is destroyed.
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
	fsDir := filepath.Join(staged, "fs")
	if err := s.populate(ctx, kind, parent, fsDir); err != nil {
		// A parent removed meanwhile shows up as a missing subvolume;
		// the metadata says what happened.
		if cerr := s.ms.Check(ctx, key, parent); cerr != nil {
			err = cerr
		} else {
			err = fmt.Errorf("snapshot %q: %w", key, err)
		}
		return nil, errors.Join(err, s.discardStaged(staged))
	}
	if err := s.dirs.Publish(staged, id); err != nil {
		return nil, errors.Join(err, s.discardStaged(staged))
	}
	snap, err := s.ms.Create(ctx, id, key, parent, kind, opts...)
	if err != nil {
		return nil, errors.Join(err, s.discard(id))
	}
	return s.mounts(snap), nil
}

func (s *Snapshotter) populate(ctx context.Context, kind snapshot.Kind, parent, fsDir string) error {
	readOnly := kind == snapshot.KindView
	if parent == "" {
		if err := createSubvolume(fsDir); err != nil {
			return err
		}
		if readOnly {
			return setReadOnly(fsDir, true)
		}
		return nil
	}
	p, err := s.ms.Get(ctx, parent)
	if err != nil {
		return err
	}
	return snapshotSubvolume(s.fsDir(p.ID), fsDir, readOnly)
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

// Commit makes the Active snapshot key the Committed snapshot name: its
// data is made durable (storage.Dirs.Sync), its subvolume read-only, and
// then the record changes. Nothing is copied.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshot.Opt) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	snap, err := s.ms.Get(ctx, key)
	if err != nil {
		return err
	}
	if snap.Kind != snapshot.KindActive {
		_, err = s.ms.Commit(ctx, name, key, opts...)
		return err
	}
	if err := s.dirs.Sync(snap.ID); err != nil {
		return err
	}
	fsDir := s.fsDir(snap.ID)
	if err := setReadOnly(fsDir, true); err != nil {
		return fmt.Errorf("commit snapshot %q: %w", key, err)
	}
	if _, err := s.ms.Commit(ctx, name, key, opts...); err != nil {
		// Still Active (or removed meanwhile): it must stay writable.
		if rerr := setReadOnly(fsDir, false); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return err
	}
	return nil
}

// Remove deletes a snapshot without children. The record goes first; a
// crash before the subvolume is gone leaves garbage that New removes.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	snap, err := s.ms.Remove(ctx, key)
	if err != nil {
		return err
	}
	return s.discard(snap.ID)
}

// discard destroys snapshots/<id>/fs, then lets Dirs remove the directory.
func (s *Snapshotter) discard(id string) error {
	if err := destroyAll(s.fsDir(id)); err != nil {
		return fmt.Errorf("discard snapshot %s: %w", id, err)
	}
	return s.dirs.Discard(id)
}

func (s *Snapshotter) discardStaged(staged string) error {
	if err := destroyAll(filepath.Join(staged, "fs")); err != nil {
		return fmt.Errorf("discard staged snapshot: %w", err)
	}
	return s.dirs.DiscardStaged(staged)
}

// Close releases nothing: the database belongs to the caller.
func (s *Snapshotter) Close() error { return nil }

// Status reports the driver for `docker info`: the backing filesystem (always
// btrfs, New refuses anything else), d_type support, the number of committed
// layers, and what Usage measures.
func (s *Snapshotter) Status(ctx context.Context) snapshot.Status {
	layers := 0
	err := s.ms.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Kind == snapshot.KindCommitted {
			layers++
		}
		return nil
	})
	details := [][2]string{
		{"Backing Filesystem", "btrfs"},
		{"Supports d_type", strconv.FormatBool(s.dtype)},
	}
	if err == nil {
		details = append(details, [2]string{"Layers", strconv.Itoa(layers)})
	}
	details = append(details, [2]string{"Size Accounting", "extents written since the snapshot was taken"})
	return snapshot.Status{Driver: DriverName, Details: details}
}

func (s *Snapshotter) fsDir(id string) string { return filepath.Join(s.dirs.Path(id), "fs") }

func (s *Snapshotter) mounts(snap storage.Snapshot) []mount.Mount {
	mode := "ro"
	if snap.Kind == snapshot.KindActive {
		mode = "rw"
	}
	return []mount.Mount{{Type: "bind", Source: s.fsDir(snap.ID), Options: []string{"rbind", mode}}}
}

// Package overlay is the overlay2 snapshotter: each snapshot is a directory
// and an Active snapshot with a parent is an overlayfs mount whose lower
// layers are the parent chain.
//
// On disk, under the root given to New (see storage.Dirs for staging and
// trash):
//
//	<root>/snapshots/<id>/fs     the snapshot's own files (upperdir when active)
//	<root>/snapshots/<id>/work   overlayfs workdir, private to the kernel
//
// Metadata lives in the shared bbolt database under snapshots/overlay2/
// (see storage.MetaStore).
//
// Mounts returned:
//
//	Active, no parent  rw bind of fs
//	Active, parent     overlay: lowerdir = parents' fs nearest first, upperdir = fs, workdir
//	View, one layer    ro bind of that layer's fs
//	View, chain        overlay with lowerdir only (read-only by construction)
//
// Overlay options are index=off, redirect_dir=off and metacopy=off, given
// explicitly because the kernel defaults come from build options and module
// parameters. With them the upperdir is a "native diff": every changed file
// is there in full (no metacopy stubs pointing at lower data), a renamed
// directory is copied rather than recorded as a redirect xattr, and deletions
// are only 0/0 character devices and trusted.overlay.opaque=y directories.
// archive.Diff can therefore read an upperdir as the layer's changeset.
// index=off keeps a layer mountable under a different lower chain (the
// index ties an upper to the exact lowers it was first mounted with) and
// avoids the index directory in workdir; its cost is that hard links are
// broken on copy-up, as with Docker's overlay2.
//
// A layer can also be unpacked before its parent exists, as a detached
// diff in the staging directory, and attached to the parent when it is
// committed (see diff.go): an upperdir never reads its lowers.
//
// Commit records a snapshot only once its files are on disk, so that a
// committed record never outlives its data across a power loss: a small
// snapshot (a few regular files and directories) is fsynced file by file,
// anything else with one syncfs of the backing filesystem (see sync.go for
// why and the bound). Each snapshot directory is flagged as an ext4 top
// directory so that its files get a block group of their own (see
// markTopDir).
package overlay

import (
	"context"
	"errors"
	"fmt"
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
const DriverName = "overlay2"

// overlayOptions returns, in a fresh slice for the caller to append to, the
// options that keep every upperdir a native diff; see the package doc.
func overlayOptions() []string {
	return []string{"index=off", "redirect_dir=off", "metacopy=off"}
}

// Snapshotter implements snapshot.Snapshotter and snapshot.Describer with
// overlayfs.
type Snapshotter struct {
	root      string // as given to New; storage.Dirs lays it out
	dirs      *storage.Dirs
	ms        *storage.MetaStore
	backingFS string

	mu     sync.Mutex
	synced map[string]bool // staged detached diffs SyncDiff made durable
}

var (
	_ snapshot.Snapshotter = (*Snapshotter)(nil)
	_ snapshot.Describer   = (*Snapshotter)(nil)
)

// New opens the overlay2 snapshotter rooted at root, with its metadata in
// db (the daemon's database, which the caller keeps and closes). It fails
// with ErrNotImplemented when the filesystem under root cannot back
// overlayfs, and removes what an earlier crash left half-done.
func New(ctx context.Context, root string, db *bbolt.DB) (*Snapshotter, error) {
	dirs, err := storage.NewDirs(root)
	if err != nil {
		return nil, err
	}
	fsName, err := storage.FilesystemName(root)
	if err != nil {
		return nil, err
	}
	if err := checkSupport(ctx, root, fsName, dirs); err != nil {
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
	return &Snapshotter{root: filepath.Clean(root), dirs: dirs, ms: ms, backingFS: fsName, synced: map[string]bool{}}, nil
}

// checkSupport mounts a two-layer overlay with upperdir in root's staging
// area: the same shape every container gets, so New fails early and clearly
// instead of at the first docker run.
func checkSupport(ctx context.Context, root, fsName string, dirs *storage.Dirs) error {
	unsupported := func(why string) error {
		return fmt.Errorf("overlay2 on %s (backing filesystem %s): %s: %w", root, fsName, why, errdefs.ErrNotImplemented)
	}
	dtype, err := storage.SupportsDType(root)
	if err != nil {
		return err
	}
	if !dtype {
		return unsupported("no d_type support (xfs needs ftype=1)")
	}
	probe, err := dirs.Stage()
	if err != nil {
		return err
	}
	defer func() { _ = dirs.DiscardStaged(probe) }()
	var paths []string
	for _, d := range []string{"l1", "l2", "upper", "work", "merged"} {
		p := filepath.Join(probe, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("overlay probe: %w", err)
		}
		paths = append(paths, p)
	}
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: append(overlayOptions(),
		"lowerdir="+mount.JoinLowerdir(paths[:2]), "upperdir="+paths[2], "workdir="+paths[3])}
	if err := mount.All([]mount.Mount{m}, paths[4]); err != nil {
		return unsupported(err.Error())
	}
	if err := mount.UnmountAll(paths[4]); err != nil {
		return fmt.Errorf("overlay probe: %w", err)
	}
	return ctx.Err()
}

// Stat returns the Info of key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	return s.ms.Stat(ctx, key)
}

// Walk calls fn for every snapshot.
func (s *Snapshotter) Walk(ctx context.Context, fn snapshot.WalkFunc) error {
	return s.ms.Walk(ctx, fn)
}

// Usage is the disk used by key's own fs directory, not its parents.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	snap, err := s.ms.Get(ctx, key)
	if err != nil {
		return snapshot.Usage{}, err
	}
	return storage.DiskUsage(ctx, s.fsDir(snap.ID))
}

// Prepare creates an Active snapshot on parent ("" for an empty one).
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent, opts)
}

// View creates a read-only View of parent.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent, opts)
}

// create publishes the directories before writing the record, so that a
// record always has its directories (see storage).
func (s *Snapshotter) create(ctx context.Context, kind snapshot.Kind, key, parent string, opts []snapshot.Opt) ([]mount.Mount, error) {
	if err := s.ms.Check(ctx, key, parent); err != nil {
		return nil, err
	}
	if err := s.checkDepth(ctx, parent); err != nil {
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
	if err := makeSnapshotDirs(staged, id); err != nil {
		return nil, errors.Join(fmt.Errorf("snapshot %q: %w", key, err), s.dirs.DiscardStaged(staged))
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

// maxLayers is overlayfs's limit on lower layers (OVL_MAX_STACK). With the
// new mount API it is the only limit; Docker's overlay2 stops at 128
// because of mount(2)'s page of options.
const maxLayers = 500

// checkDepth refuses a parent chain that overlayfs could not mount, at
// Prepare rather than at the container's first start.
func (s *Snapshotter) checkDepth(ctx context.Context, parent string) error {
	if parent == "" {
		return nil
	}
	p, err := s.ms.Get(ctx, parent)
	if err != nil {
		return err
	}
	if n := len(p.ParentIDs) + 1; n > maxLayers {
		return fmt.Errorf("snapshot parent %q has %d layers, overlayfs mounts at most %d: %w",
			parent, n, maxLayers, errdefs.ErrInvalidArgument)
	}
	return nil
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
// its data is on disk (see sync.go). Its fs directory becomes a lower
// layer as it is: nothing is copied.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshot.Opt) error {
	snap, err := s.ms.Get(ctx, key)
	if err != nil {
		return err
	}
	if snap.Kind == snapshot.KindActive {
		if err := s.syncSnapshot(ctx, snap.ID); err != nil {
			return err
		}
	}
	_, err = s.ms.Commit(ctx, name, key, opts...)
	return err
}

// Remove deletes a snapshot without children. The record goes first; a
// crash before the directory is gone leaves garbage that New removes.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	snap, err := s.ms.Remove(ctx, key)
	if err != nil {
		return err
	}
	return s.dirs.Discard(snap.ID)
}

// Close releases nothing: the database belongs to the caller.
func (s *Snapshotter) Close() error { return nil }

// Status reports the driver for `docker info`, with Docker's overlay2 keys
// in Docker's order, plus the number of committed layers. d_type and native
// diff are always true: New refuses a root without d_type, and the mount
// options rule out metacopy and redirects.
func (s *Snapshotter) Status(ctx context.Context) snapshot.Status {
	layers := 0
	err := s.ms.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Kind == snapshot.KindCommitted {
			layers++
		}
		return nil
	})
	details := [][2]string{
		{"Backing Filesystem", s.backingFS},
		{"Supports d_type", "true"},
		{"Using metacopy", "false"},
		{"Native Overlay Diff", "true"},
		{"userxattr", "false"},
	}
	if err == nil {
		details = append(details, [2]string{"Layers", strconv.Itoa(layers)})
	}
	return snapshot.Status{Driver: DriverName, Details: details}
}

func (s *Snapshotter) fsDir(id string) string { return filepath.Join(s.dirs.Path(id), "fs") }

func (s *Snapshotter) mounts(snap storage.Snapshot) []mount.Mount {
	lowers := make([]string, len(snap.ParentIDs))
	for i, id := range snap.ParentIDs {
		lowers[i] = s.fsDir(id)
	}
	switch {
	case snap.Kind == snapshot.KindActive && len(lowers) == 0:
		return []mount.Mount{{Type: "bind", Source: s.fsDir(snap.ID), Options: []string{"rbind", "rw"}}}
	case snap.Kind == snapshot.KindActive:
		opts := append(overlayOptions(),
			"lowerdir="+mount.JoinLowerdir(lowers),
			"upperdir="+s.fsDir(snap.ID),
			"workdir="+filepath.Join(s.dirs.Path(snap.ID), "work"))
		return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
	case len(lowers) == 0:
		return []mount.Mount{{Type: "bind", Source: s.fsDir(snap.ID), Options: []string{"rbind", "ro"}}}
	case len(lowers) == 1:
		return []mount.Mount{{Type: "bind", Source: lowers[0], Options: []string{"rbind", "ro"}}}
	}
	opts := append(overlayOptions(), "lowerdir="+mount.JoinLowerdir(lowers))
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

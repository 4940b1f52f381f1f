package overlay

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"berth/errdefs"
	"berth/mount"
	"berth/snapshot"
)

// TestDetachedDiff unpacks a layer with a whiteout before its parent is
// committed, attaches it, and checks what a container sees through the
// chain.
func TestDetachedDiff(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	for _, presync := range []bool{false, true} {
		t.Run(map[bool]string{false: "synced-by-commit", true: "presynced"}[presync], func(t *testing.T) {
			t.Parallel()
			testDetachedDiff(t, presync)
		})
	}
}

func testDetachedDiff(t *testing.T, presync bool) {
	ctx := context.Background()
	s, err := New(ctx, t.TempDir(), openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := s.PrepareDiff(ctx) // the child first, as a pull may
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "new"))
	if err := unix.Mknod(filepath.Join(dir, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	mounts, err := s.Prepare(ctx, "base-a", "")
	if err != nil {
		t.Fatal(err)
	}
	baseDir, _, _ := mount.BindOf(mounts)
	writeFile(t, filepath.Join(baseDir, "gone"))
	writeFile(t, filepath.Join(baseDir, "kept"))
	if err := s.CommitDiff(ctx, dir, "child-a", "child", "base"); !errdefs.NotFound(err) {
		t.Fatalf("commit on a missing parent: %v, want not found", err)
	}
	if err := s.Commit(ctx, "base", "base-a"); err != nil {
		t.Fatal(err)
	}
	if presync {
		if err := s.SyncDiff(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CommitDiff(ctx, dir, "child-a", "child", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staged directory after commit: %v", err)
	}
	if s.takeSynced(filepath.Dir(dir)) {
		t.Error("CommitDiff kept the SyncDiff mark")
	}
	info, err := s.Stat(ctx, "child")
	if err != nil || info.Kind != snapshot.KindCommitted || info.Parent != "base" {
		t.Fatalf("child: %+v, %v", info, err)
	}
	if _, err := s.Stat(ctx, "child-a"); !errdefs.NotFound(err) {
		t.Errorf("the passing key child-a: %v, want not found", err)
	}
	if err := s.Remove(ctx, "base"); err == nil {
		t.Error("removed the parent of a committed detached diff")
	}
	mounts, err = s.View(ctx, "v", "child")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "m")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mount.All(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mount.UnmountAll(target) })
	for name, want := range map[string]bool{"new": true, "kept": true, "gone": false} {
		if _, err := os.Lstat(filepath.Join(target, name)); (err == nil) != want {
			t.Errorf("%s in the merged view: %v, want present=%v", name, err, want)
		}
	}
}

func TestDetachedDiffRefusals(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	root, db := t.TempDir(), openDB(t)
	s, err := New(ctx, root, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "taken-a", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "taken", "taken-a"); err != nil {
		t.Fatal(err)
	}
	dir, err := s.PrepareDiff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		dir       string
		key, want string
		kind      error
	}{
		{"not staged", filepath.Join(root, "snapshots"), "k", "n", errdefs.ErrInvalidArgument},
		{"outside the root", filepath.Join(t.TempDir(), "x", "fs"), "k", "n", errdefs.ErrInvalidArgument},
		{"name taken", dir, "k", "taken", errdefs.ErrAlreadyExists},
		{"key taken", dir, "taken", "n", errdefs.ErrAlreadyExists},
	}
	for _, tt := range tests {
		if err := s.CommitDiff(ctx, tt.dir, tt.key, tt.want, ""); !errors.Is(err, tt.kind) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.kind)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("a refused commit consumed the staged directory: %v", err)
	}
	if err := s.DiscardDiff(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("discarded directory: %v", err)
	}
	if err := s.DiscardDiff(dir); err != nil {
		t.Errorf("second discard: %v", err)
	}
	// A crash leaves staged diffs behind: the next New removes them.
	left, err := s.PrepareDiff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, root, db); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(left)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staged diff after a restart: %v", err)
	}
}

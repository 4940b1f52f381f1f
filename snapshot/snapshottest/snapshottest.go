// Package snapshottest is the conformance suite every snapshot.Snapshotter
// passes. Drivers call Run from their tests; the suite mounts for real, so
// it needs root and a filesystem where the driver works (t.TempDir, on the
// host's ext4 or xfs).
package snapshottest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"berth/mount"
	"berth/snapshot"
)

// Run runs the suite against snapshotters made by newSnapshotter, which
// opens a snapshotter on an empty root directory and registers its own
// cleanup (closing a database) with t. Subtests run in parallel, each on a
// fresh root; the suite closes the snapshotter.
func Run(t *testing.T, newSnapshotter func(t *testing.T, root string) snapshot.Snapshotter) {
	if os.Geteuid() != 0 {
		t.Skip("snapshotter conformance mounts filesystems and needs root")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, snapshot.Snapshotter)
	}{
		{"LifecycleErrors", testLifecycleErrors},
		{"StatWalk", testStatWalk},
		{"Usage", testUsage},
		{"RoundTrip", testRoundTrip},
		{"RemoveAndReuse", testRemoveAndReuse},
		{"DeleteLowerFile", testDeleteLowerFile},
		{"ReplaceLowerDir", testReplaceLowerDir},
		{"Chown", testChown},
		{"Hardlinks", testHardlinks},
		{"Symlinks", testSymlinks},
		{"Xattrs", testXattrs},
		{"SpecialFiles", testSpecialFiles},
		{"ParallelPrepare", testParallelPrepare},
		{"RemoveRacesPrepare", testRemoveRacesPrepare},
		{"Stack200", testStack200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sn := newSnapshotter(t, t.TempDir())
			t.Cleanup(func() {
				if err := sn.Close(); err != nil {
					t.Errorf("close snapshotter: %v", err)
				}
			})
			tt.fn(t, sn)
		})
	}
}

// mountAt mounts mounts on a fresh directory that is unmounted on cleanup
// even when the test fails.
func mountAt(t *testing.T, mounts []mount.Mount) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mount.UnmountAll(target); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := mount.All(mounts, target); err != nil {
		t.Fatalf("mount %+v: %v", mounts, err)
	}
	return target
}

func unmount(t *testing.T, target string) {
	t.Helper()
	if err := mount.UnmountAll(target); err != nil {
		t.Fatal(err)
	}
}

// layer commits name on parent after fill has written into the mounted
// Active snapshot, as image unpacking does.
func layer(t *testing.T, sn snapshot.Snapshotter, name, parent string, fill func(root string)) {
	t.Helper()
	ctx := context.Background()
	key := name + "-active"
	mounts, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		t.Fatalf("Prepare(%s, %s): %v", key, parent, err)
	}
	root := mountAt(t, mounts)
	fill(root)
	unmount(t, root)
	if err := sn.Commit(ctx, name, key); err != nil {
		t.Fatalf("Commit(%s, %s): %v", name, key, err)
	}
}

// active prepares key on parent and returns the mounted root and mounts.
func active(t *testing.T, sn snapshot.Snapshotter, key, parent string) (string, []mount.Mount) {
	t.Helper()
	mounts, err := sn.Prepare(context.Background(), key, parent)
	if err != nil {
		t.Fatalf("Prepare(%s, %s): %v", key, parent, err)
	}
	return mountAt(t, mounts), mounts
}

// view mounts a View of parent.
func view(t *testing.T, sn snapshot.Snapshotter, key, parent string) string {
	t.Helper()
	mounts, err := sn.View(context.Background(), key, parent)
	if err != nil {
		t.Fatalf("View(%s, %s): %v", key, parent, err)
	}
	return mountAt(t, mounts)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s = %q, want %q", path, got, want)
	}
}

func mustNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("%s: Lstat err = %v, want not exist", path, err)
	}
}

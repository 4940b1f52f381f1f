package btrfs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"berth/snapshot"
	"berth/snapshot/btrfs/btrfstest"
	"berth/snapshot/snapshottest"
)

func openDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "berth.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newRoot returns a fresh directory on the btrfs filesystem mnt.
func newRoot(t *testing.T, mnt string) string {
	t.Helper()
	root, err := os.MkdirTemp(mnt, "root-")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func open(t *testing.T, root string) *Snapshotter {
	t.Helper()
	s, err := New(context.Background(), root, openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the shared suite with every subtest on its own
// root directory of one loop-mounted btrfs, which goes when all are done.
func TestConformance(t *testing.T) {
	t.Parallel()
	mnt := btrfstest.Mount(t, 2<<30)
	snapshottest.Run(t, func(t *testing.T, _ string) snapshot.Snapshotter {
		return open(t, newRoot(t, mnt))
	})
}

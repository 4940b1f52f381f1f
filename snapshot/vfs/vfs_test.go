package vfs

import (
	"context"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"berth/snapshot"
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

func newSnapshotter(t *testing.T, root string) snapshot.Snapshotter {
	t.Helper()
	s, err := New(context.Background(), root, openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	snapshottest.Run(t, newSnapshotter)
}

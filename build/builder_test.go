package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"berth/snapshot"
	"berth/snapshot/vfs"

	bolt "go.etcd.io/bbolt"
)

// TestCleanup checks what a daemon start removes after a crash: the
// scratch directories and the snapshot views of builds, nothing else.
func TestCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "berth.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sn, err := vfs.New(ctx, filepath.Join(root, "snapshots"), db)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	b, err := New(Options{DB: db, Root: filepath.Join(root, "build"), Snapshotter: sn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "active", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "layer", "active"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{viewPrefix + "left", "someone-elses-view"} {
		if _, err := sn.View(ctx, key, "layer"); err != nil {
			t.Fatal(err)
		}
	}
	stale := filepath.Join(b.tmpRoot(), "build-123", "context.tar")
	os.MkdirAll(filepath.Dir(stale), 0o700)
	os.WriteFile(stale, []byte("x"), 0o600)
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(b.tmpRoot()); len(entries) != 0 {
		t.Errorf("scratch left: %v", entries)
	}
	var keys []string
	sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		keys = append(keys, info.Name)
		return nil
	})
	if len(keys) != 2 {
		t.Errorf("snapshots after clean-up: %v, want the layer and the other view", keys)
	}
}

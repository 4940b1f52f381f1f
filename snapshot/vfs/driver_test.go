package vfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"berth/errdefs"
	"berth/mount"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("copying ownership and device nodes needs root")
	}
}

func TestStatus(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	s, err := New(ctx, t.TempDir(), openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	st := s.Status(ctx)
	details := map[string]string{}
	for _, d := range st.Details {
		details[d[0]] = d[1]
	}
	if st.Driver != "vfs" || details["Layers"] != "1" || details["Backing Filesystem"] == "" {
		t.Errorf("Status = %+v", st)
	}
}

// TestViewDoesNotCopy: committed layers are immutable, so a View binds the
// parent instead of paying for a copy.
func TestViewDoesNotCopy(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	s, err := New(ctx, t.TempDir(), openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := s.Prepare(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	dir, _, _ := mount.BindOf(mounts)
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	vm, err := s.View(ctx, "v", "c")
	if err != nil {
		t.Fatal(err)
	}
	if src, ro, ok := mount.BindOf(vm); !ok || !ro || src != dir {
		t.Errorf("View mounts %+v, want a ro bind of %s", vm, dir)
	}
	u, err := s.Usage(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if u.Size >= 1<<20 {
		t.Errorf("View uses %d bytes: it copied its parent", u.Size)
	}
	am, err := s.Prepare(ctx, "child", "c")
	if err != nil {
		t.Fatal(err)
	}
	if src, ro, ok := mount.BindOf(am); !ok || ro || src == dir {
		t.Errorf("Active mounts %+v, want a rw bind of its own copy", am)
	}
}

func TestCancelledPrepareLeavesNothing(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root := t.TempDir()
	s, err := New(context.Background(), root, openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Prepare(ctx, "a", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare with cancelled ctx: %v", err)
	}
	if _, err := s.Stat(context.Background(), "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Stat after cancelled Prepare: %v", err)
	}
	for _, sub := range []string{"snapshots", "staging", "trash"} {
		entries, err := os.ReadDir(filepath.Join(root, sub))
		if err != nil || len(entries) != 0 {
			t.Errorf("%s after cancelled Prepare: %v, %v", sub, entries, err)
		}
	}
}

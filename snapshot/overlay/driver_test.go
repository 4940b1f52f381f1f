package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"berth/errdefs"
	"berth/mount"
	"berth/snapshot"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("overlay needs root")
	}
}

func TestMountShapes(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	s, err := New(ctx, t.TempDir(), openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"l1", "l2"} {
		parent := ""
		if i > 0 {
			parent = "l1"
		}
		if _, err := s.Prepare(ctx, name+"-a", parent); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, name, name+"-a"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		make     func() ([]mount.Mount, error)
		wantType string
		readOnly bool
		lowers   int
	}{
		{"active base", func() ([]mount.Mount, error) { return s.Prepare(ctx, "a0", "") }, "bind", false, 0},
		{"active on chain", func() ([]mount.Mount, error) { return s.Prepare(ctx, "a2", "l2") }, "overlay", false, 2},
		{"view of one layer", func() ([]mount.Mount, error) { return s.View(ctx, "v1", "l1") }, "bind", true, 0},
		{"view of chain", func() ([]mount.Mount, error) { return s.View(ctx, "v2", "l2") }, "overlay", true, 2},
	}
	for _, tt := range tests {
		mounts, err := tt.make()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(mounts) != 1 || mounts[0].Type != tt.wantType || mounts[0].ReadOnly() != tt.readOnly {
			t.Errorf("%s: mounts %+v", tt.name, mounts)
			continue
		}
		if o, ok := mount.OverlayOf(mounts); ok {
			if len(o.Lower) != tt.lowers {
				t.Errorf("%s: %d lowers, want %d", tt.name, len(o.Lower), tt.lowers)
			}
			for _, opt := range overlayOptions() {
				if !slices.Contains(mounts[0].Options, opt) {
					t.Errorf("%s: option %s missing from %v", tt.name, opt, mounts[0].Options)
				}
			}
		}
	}
}

func TestStatus(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	s, err := New(ctx, root, openDB(t))
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
	if st.Driver != "overlay2" || details["Supports d_type"] != "true" ||
		details["Native Overlay Diff"] != "true" || details["Layers"] != "1" || details["Backing Filesystem"] == "" {
		t.Errorf("Status = %+v", st)
	}
}

// TestRestartCleansCrashLeftovers plays a crash at each step of create and
// remove: a staged build, a half-deleted trash entry and a published
// directory whose record was never written.
func TestRestartCleansCrashLeftovers(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	root, db := t.TempDir(), openDB(t)
	s, err := New(ctx, root, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "kept", ""); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(root, "staging", "new-123", "fs", "file"),
		filepath.Join(root, "trash", "abc-1", "fs", "file"),
		filepath.Join(root, "snapshots", "0123456789abcdef", "fs", "file"),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = New(ctx, root, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(filepath.Dir(filepath.Dir(p))); !os.IsNotExist(err) {
			t.Errorf("%s survived restart: %v", p, err)
		}
	}
	mounts, err := s.Mounts(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	if dir, _, ok := mount.BindOf(mounts); !ok {
		t.Fatalf("kept: mounts %+v", mounts)
	} else if _, err := os.Stat(dir); err != nil {
		t.Fatalf("kept snapshot's directory: %v", err)
	}
}

func TestUnsupportedBackingFilesystem(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	// An overlayfs cannot be the upper layer of another overlayfs.
	base := t.TempDir()
	var dirs []string
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		p := filepath.Join(base, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, p)
	}
	m := mount.Mount{Type: "overlay", Source: "overlay",
		Options: []string{"lowerdir=" + dirs[0], "upperdir=" + dirs[1], "workdir=" + dirs[2]}}
	if err := m.Mount(dirs[3]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mount.UnmountAll(dirs[3]) })
	_, err := New(context.Background(), filepath.Join(dirs[3], "root"), openDB(t))
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "overlayfs") {
		t.Fatalf("New on overlayfs: %v, want ErrNotImplemented naming overlayfs", err)
	}
}

// TestNativeDiff checks that the upperdir records changes the way a layer
// tar does: a renamed lower directory is refused (EXDEV, so mv copies it)
// rather than stored as a redirect, and a metadata-only change copies the
// whole file up rather than leaving a metacopy stub.
func TestNativeDiff(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	s, err := New(ctx, t.TempDir(), openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := s.Prepare(ctx, "base-a", "")
	if err != nil {
		t.Fatal(err)
	}
	baseDir, _, _ := mount.BindOf(mounts)
	content := strings.Repeat("data", 1024)
	if err := os.MkdirAll(filepath.Join(baseDir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(baseDir, "file"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "base", "base-a"); err != nil {
		t.Fatal(err)
	}
	mounts, err = s.Prepare(ctx, "c", "base")
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
	if err := os.Rename(filepath.Join(target, "dir"), filepath.Join(target, "moved")); !errors.Is(err, unix.EXDEV) {
		t.Errorf("rename of a lower directory: %v, want EXDEV", err)
	}
	if err := os.Chown(filepath.Join(target, "file"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	upper, _ := mount.WritableDir(mounts)
	got, err := os.ReadFile(filepath.Join(upper, "file"))
	if err != nil || string(got) != content {
		t.Errorf("upperdir copy of a chowned file has %d bytes, %v; want the full %d", len(got), err, len(content))
	}
	buf := make([]byte, 64)
	if _, err := unix.Lgetxattr(filepath.Join(upper, "file"), "trusted.overlay.metacopy", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("trusted.overlay.metacopy on the copied-up file: %v, want ENODATA", err)
	}
}

func TestLayerLimit(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "berth.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := New(ctx, t.TempDir(), db)
	if err != nil {
		t.Fatal(err)
	}
	// Records only: the limit is checked before any directory is made, so
	// the chain needs no directories.
	parent := ""
	for i := range maxLayers + 1 {
		if i == maxLayers {
			if _, err := s.View(ctx, "view", parent); err != nil {
				t.Fatalf("View of exactly %d layers: %v", maxLayers, err)
			}
		}
		key, name := fmt.Sprintf("a%d", i), fmt.Sprintf("l%d", i)
		if _, err := s.ms.Create(ctx, fmt.Sprintf("id%d", i), key, parent, snapshot.KindActive); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ms.Commit(ctx, name, key); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	if _, err := s.Prepare(ctx, "top", parent); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Prepare on %d layers: %v, want ErrInvalidArgument", maxLayers+1, err)
	}
	if _, err := s.View(ctx, "view2", parent); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("View of %d layers: %v, want ErrInvalidArgument", maxLayers+1, err)
	}
}

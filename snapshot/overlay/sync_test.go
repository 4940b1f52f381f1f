package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"berth/mount"
)

// TestSmallTree checks which snapshots Commit fsyncs file by file and
// which it leaves to syncfs.
func TestSmallTree(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	files := func(n int) func(t *testing.T, root string) {
		return func(t *testing.T, root string) {
			for i := range n {
				writeFile(t, filepath.Join(root, "d", fmt.Sprint(i)))
			}
		}
	}
	tests := []struct {
		name      string
		make      func(t *testing.T, root string)
		wantOK    bool
		wantFiles int
	}{
		{"empty", func(*testing.T, string) {}, true, 0},
		{"few files", files(3), true, 3},
		{"at the bound", files(maxFsyncEntries - 2), true, maxFsyncEntries - 2},
		{"over the bound", files(maxFsyncEntries - 1), false, 0},
		{"symlink", func(t *testing.T, root string) {
			if err := os.Symlink("x", filepath.Join(root, "l")); err != nil {
				t.Fatal(err)
			}
		}, false, 0},
		{"whiteout", func(t *testing.T, root string) {
			if err := unix.Mknod(filepath.Join(root, "w"), unix.S_IFCHR, 0); err != nil {
				t.Fatal(err)
			}
		}, false, 0},
		{"fifo", func(t *testing.T, root string) {
			if err := unix.Mkfifo(filepath.Join(root, "p"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			tt.make(t, root)
			files, dirs, ok, err := smallTree(root)
			if err != nil || ok != tt.wantOK || len(files) != tt.wantFiles {
				t.Fatalf("smallTree = %d files, %d dirs, %v, %v; want %d files, %v", len(files), len(dirs), ok, err, tt.wantFiles, tt.wantOK)
			}
			if ok && (len(dirs) == 0 || dirs[0] != root) {
				t.Errorf("dirs %v do not start at the root", dirs)
			}
		})
	}
}

// TestCommitKeepsContent commits a small and a large snapshot (the two
// ways of making them durable) and reads them back through a View.
func TestCommitKeepsContent(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	s, err := New(ctx, t.TempDir(), openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{2, 3 * maxFsyncEntries} {
		key := fmt.Sprint("active-", n)
		mounts, err := s.Prepare(ctx, key, "")
		if err != nil {
			t.Fatal(err)
		}
		dir, _, _ := mount.BindOf(mounts)
		for i := range n {
			writeFile(t, filepath.Join(dir, "d", fmt.Sprint(i)))
		}
		name := fmt.Sprint("layer-", n)
		if err := s.Commit(ctx, name, key); err != nil {
			t.Fatalf("commit %d files: %v", n, err)
		}
		views, err := s.View(ctx, "view-"+name, name)
		if err != nil {
			t.Fatal(err)
		}
		vdir, _, _ := mount.BindOf(views)
		if ents, err := os.ReadDir(filepath.Join(vdir, "d")); err != nil || len(ents) != n {
			t.Errorf("%s holds %d files (%v), want %d", name, len(ents), err, n)
		}
	}
}

func writeFile(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
}

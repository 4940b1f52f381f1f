package storage

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"berth/mount"
)

func TestDirsCleanup(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d, err := NewDirs(root)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(id string) {
		staged, err := d.Stage()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(staged, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := d.Publish(staged, id); err != nil {
			t.Fatal(err)
		}
	}
	publish("kept")
	publish("orphan")
	leftover, err := d.Stage()
	if err != nil {
		t.Fatal(err)
	}
	trash := filepath.Join(root, "trash", "x-1")
	if err := os.MkdirAll(filepath.Join(trash, "fs", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}

	if err := d.Cleanup(context.Background(), map[string]string{"kept": "key"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		filepath.Join(d.Path("kept"), "f"): true,
		d.Path("orphan"):                   false,
		leftover:                           false,
		trash:                              false,
	} {
		_, err := os.Stat(path)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", path, got, want)
		}
	}
	if err := d.Discard("kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path("kept")); !os.IsNotExist(err) {
		t.Fatalf("discarded snapshot still there: %v", err)
	}
	if err := d.Discard("never-existed"); err != nil {
		t.Fatalf("Discard of a missing id: %v", err)
	}
}

func TestDiskUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"b", "c"} {
		if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	u, err := DiskUsage(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	// dir, sub and one inode for the three links.
	if u.Inodes != 3 || u.Size < int64(len(data)) || u.Size >= 2*int64(len(data)) {
		t.Errorf("DiskUsage = %+v, want 3 inodes and one copy of %d bytes", u, len(data))
	}
	if _, err := DiskUsage(context.Background(), filepath.Join(dir, "missing")); err == nil {
		t.Error("DiskUsage of a missing directory succeeded")
	}
}

func TestSupportsDType(t *testing.T) {
	t.Parallel()
	// ext4, xfs (ftype=1), btrfs and tmpfs all fill in d_type; the test
	// directory is on one of them.
	ok, err := SupportsDType(t.TempDir())
	if err != nil || !ok {
		t.Fatalf("SupportsDType = %v, %v", ok, err)
	}
	name, err := FilesystemName(t.TempDir())
	if err != nil || name == "" {
		t.Fatalf("FilesystemName = %q, %v", name, err)
	}
}

func TestDirsCleanupUnmountsLeftoverProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	t.Parallel()
	d, err := NewDirs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	staged, err := d.Stage()
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(staged, "merged")
	if err := os.Mkdir(probe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := (mount.Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}).Mount(probe); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mount.UnmountAll(probe) })
	if err := d.Cleanup(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Fatalf("staged directory with a mount survived Cleanup: %v", err)
	}
}

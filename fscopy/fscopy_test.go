package fscopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth/mount"
	"berth/testutil"
)

func BenchmarkTree(b *testing.B) {
	src := b.TempDir()
	for i := range 1000 {
		dir := filepath.Join(src, fmt.Sprintf("d%02d", i%50))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), make([]byte, 4096), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	dst := b.TempDir()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := Tree(context.Background(), src, filepath.Join(dst, fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "µs/file")
}

// TestCopyReflinks checks on a loop-mounted btrfs that copies share extents
// with their source instead of duplicating the data. (btrfs shares extents
// for copy_file_range too, so this guards against a read/write copy, not
// against losing FICLONE alone.)
func TestReflinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting btrfs needs root")
	}
	mkfs, err := exec.LookPath("mkfs.btrfs")
	if err != nil {
		t.Skip("mkfs.btrfs not installed")
	}
	t.Parallel()
	img := filepath.Join(t.TempDir(), "btrfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v: %s", err, out)
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// mount(8) sets up the loop device with autoclear, so unmounting frees it.
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("loop mount unavailable: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if err := mount.UnmountAll(mnt); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	src := filepath.Join(mnt, "src")
	const size = 32 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := freeBytes(t, mnt)
	if err := Tree(context.Background(), src, filepath.Join(mnt, "dst")); err != nil {
		t.Fatal(err)
	}
	used := before - freeBytes(t, mnt)
	if used > size/4 {
		t.Errorf("copy used %d bytes of a %d-byte file: not reflinked", used, size)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "dst", "big"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reflinked copy differs: %v", err)
	}
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bfree) * st.Bsize
}

func TestStopsOnCancel(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	for i := range 200 {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprint(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Tree(ctx, src, filepath.Join(t.TempDir(), "dst")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Tree with a cancelled context: %v", err)
	}
}

// TestIntoEmptyDir: an existing empty destination takes the source's
// owner, mode and times; a file in it is refused rather than overwritten.
func TestIntoEmptyDir(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(src, 7, 8); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(src, 0o1751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(src, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := Tree(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dst, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 7 || st.Gid != 8 || st.Mode&0o7777 != 0o1751 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("destination root: uid %d gid %d mode %o mtime %d", st.Uid, st.Gid, st.Mode&0o7777, st.Mtim.Sec)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "data" {
		t.Errorf("copied file: %q %v", b, err)
	}
	if err := Tree(context.Background(), src, dst); !errors.Is(err, os.ErrExist) {
		t.Errorf("copy over existing files: %v", err)
	}
}

package btrfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"berth/errdefs"
	"berth/mount"
	"berth/snapshot/btrfs/btrfstest"
	"berth/snapshot/storage"
)

// TestStructSizes pins the ioctl argument structs to the kernel's sizes;
// a wrong size would change the request number and the kernel would say
// ENOTTY, or worse, read past the struct.
func TestStructSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"btrfs_ioctl_vol_args", unsafe.Sizeof(volArgs{}), 4096},
		{"btrfs_ioctl_vol_args_v2", unsafe.Sizeof(volArgsV2{}), 4096},
		{"btrfs_ioctl_search_key", unsafe.Sizeof(searchKey{}), 104},
		{"btrfs_ioctl_search_args_v2", unsafe.Offsetof(searchArgsV2{}.buf), 112},
		{"btrfs_ioctl_get_subvol_info_args", unsafe.Sizeof(subvolInfo{}), 504},
		{"otransid offset", unsafe.Offsetof(subvolInfo{}.otransid), 352},
		// Request numbers as the kernel headers spell them.
		{"BTRFS_IOC_SNAP_CREATE_V2", iocSnapCreateV2, 0x50009417},
		{"BTRFS_IOC_SNAP_DESTROY", iocSnapDestroy, 0x5000940f},
		{"BTRFS_IOC_TREE_SEARCH_V2", iocTreeSearchV2, 0xc0709411},
		{"BTRFS_IOC_SUBVOL_GETFLAGS", iocSubvolGetFlag, 0x80089419},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func TestNextKey(t *testing.T) {
	t.Parallel()
	max := ^uint64(0)
	tests := []struct {
		obj, off uint64
		typ      uint32
		want     searchKey
		ok       bool
	}{
		{5, 7, 1, searchKey{minObjectID: 5, minType: 1, minOffset: 8}, true},
		{5, max, 1, searchKey{minObjectID: 5, minType: 2}, true},
		{5, max, 255, searchKey{minObjectID: 6}, true},
		{max, max, 255, searchKey{}, false},
	}
	for _, tt := range tests {
		var k searchKey
		if ok := nextKey(&k, tt.obj, tt.typ, tt.off); ok != tt.ok || k != tt.want {
			t.Errorf("nextKey(%d, %d, %d) = %+v, %v; want %+v, %v", tt.obj, tt.typ, tt.off, k, ok, tt.want, tt.ok)
		}
	}
}

func TestNotOnBtrfs(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "snapshots", "btrfs")
	if name, _ := storage.FilesystemName(filepath.Dir(filepath.Dir(root))); name == "btrfs" {
		t.Skip("the temporary directory is on btrfs")
	}
	_, err := New(context.Background(), root, openDB(t))
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "not btrfs") ||
		!strings.Contains(err.Error(), "overlay2") {
		t.Fatalf("New on a non-btrfs root: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New left %s behind: %v", root, err)
	}
}

// TestBlockLevelCopyOnWrite is why the driver exists: one byte written
// into a big inherited file costs a block, not the file, and Usage says so
// while du does not.
func TestBlockLevelCopyOnWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newRoot(t, btrfstest.Mount(t, 1<<30)))
	const size = 64 << 20
	dir := prepareDir(t, s, "l1", "")
	writePattern(t, filepath.Join(dir, "big"), size)
	if err := s.Commit(ctx, "layer", "l1"); err != nil {
		t.Fatal(err)
	}
	base, err := s.Usage(ctx, "layer")
	if err != nil || base.Size < size || base.Size > size+size/16 {
		t.Fatalf("layer usage %+v, %v; want about %d", base, err, size)
	}
	tests := []struct {
		key        string
		n          int64
		minU, maxU int64
	}{
		{"one-byte", 1, 1, 64 << 10},
		{"one-mib", 1 << 20, 1 << 20, 1<<20 + 64<<10},
	}
	for _, tt := range tests {
		dir := prepareDir(t, s, tt.key, "layer")
		f, err := os.OpenFile(filepath.Join(dir, "big"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, tt.n), size/2); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		u, err := s.Usage(ctx, tt.key)
		if err != nil || u.Size < tt.minU || u.Size > tt.maxU {
			t.Errorf("%s: usage %+v, %v; want %d to %d bytes", tt.key, u, err, tt.minU, tt.maxU)
		}
		if du, err := storage.DiskUsage(ctx, dir); err != nil || du.Size < size {
			t.Errorf("%s: du %+v, %v; du counts shared extents, want at least %d", tt.key, du, err, size)
		}
	}
}

func prepareDir(t *testing.T, s *Snapshotter, key, parent string) string {
	t.Helper()
	mounts, err := s.Prepare(context.Background(), key, parent)
	if err != nil {
		t.Fatal(err)
	}
	dir, ok := mount.WritableDir(mounts)
	if !ok {
		t.Fatalf("Prepare(%s) mounts %+v have no writable dir", key, mounts)
	}
	return dir
}

func writePattern(t *testing.T, path string, size int) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCommittedIsReadOnly: a layer cannot change under its children, even
// through a path that bypasses the read-only mount.
func TestCommittedIsReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newRoot(t, btrfstest.Mount(t, 1<<30)))
	dir := prepareDir(t, s, "a", "")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "layer", "a"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a committed layer's subvolume: %v, want EROFS", err)
	}
	// A failed commit leaves the snapshot writable.
	child := prepareDir(t, s, "b", "layer")
	if err := s.Commit(ctx, "layer", "b"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("commit onto an existing name: %v", err)
	}
	if err := os.WriteFile(filepath.Join(child, "g"), nil, 0o644); err != nil {
		t.Errorf("write after a failed commit: %v", err)
	}
	if err := s.Remove(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "layer"); err != nil {
		t.Fatalf("remove a read-only layer: %v", err)
	}
}

// TestRemoveNestedSubvolume: a container may create subvolumes inside its
// snapshot (docker-in-docker does); removing the snapshot removes them.
func TestRemoveNestedSubvolume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newRoot(t, btrfstest.Mount(t, 1<<30)))
	dir := prepareDir(t, s, "a", "")
	if err := os.MkdirAll(filepath.Join(dir, "var", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(dir, "var", "lib", "inner")
	if err := createSubvolume(nested); err != nil {
		t.Fatal(err)
	}
	if err := createSubvolume(filepath.Join(nested, "deeper")); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "layer", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "layer"); err != nil {
		t.Fatalf("remove with nested subvolumes: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot directory after Remove: %v", err)
	}
}

// TestRecover reopens a root after simulated crashes: a staged subvolume
// never published, a published one never recorded, and a layer set
// read-only whose commit was never recorded.
func TestRecover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := newRoot(t, btrfstest.Mount(t, 1<<30))
	db := openDB(t)
	s, err := New(ctx, root, db)
	if err != nil {
		t.Fatal(err)
	}
	active := prepareDir(t, s, "work", "")
	if err := setReadOnly(active, true); err != nil {
		t.Fatal(err)
	}
	staged, err := s.dirs.Stage()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(staged, "fs"), filepath.Join(root, "snapshots", "0123456789abcdef")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := createSubvolume(p); err != nil {
			t.Fatal(err)
		}
		if err := setReadOnly(p, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(ctx, root, db); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	for _, sub := range []string{"staging", "trash"} {
		if entries, err := os.ReadDir(filepath.Join(root, sub)); err != nil || len(entries) != 0 {
			t.Errorf("%s after recovery: %v, %v", sub, entries, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "snapshots"))
	if err != nil || len(entries) != 1 {
		t.Errorf("snapshots after recovery: %v, %v; want only the recorded one", entries, err)
	}
	if ro, err := isReadOnly(active); err != nil || ro {
		t.Errorf("active snapshot read-only after recovery: %v, %v", ro, err)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newRoot(t, btrfstest.Mount(t, 1<<30)))
	prepareDir(t, s, "a", "")
	if err := s.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	st := s.Status(ctx)
	details := map[string]string{}
	for _, d := range st.Details {
		details[d[0]] = d[1]
	}
	if st.Driver != "btrfs" || details["Layers"] != "1" || details["Backing Filesystem"] != "btrfs" ||
		details["Supports d_type"] != "true" {
		t.Errorf("Status = %+v", st)
	}
}

// TestUsageCountsInlineAndShared: small files live inline in the metadata
// and count by their length; a reflinked copy of a file adds nothing, as
// it shares the original's extents.
func TestUsageCountsInlineAndShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newRoot(t, btrfstest.Mount(t, 1<<30)))
	dir := prepareDir(t, s, "a", "")
	const small, n = 1000, 100
	for i := range n {
		data := strings.Repeat(string(rune('a'+i%26)), small)
		if err := os.WriteFile(filepath.Join(dir, "small"+strconv.Itoa(i)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Usage(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if before.Size < n*small || before.Size >= n*4096 || before.Inodes != n+1 {
		t.Errorf("usage of %d inline files of %d bytes: %+v", n, small, before)
	}
	writePattern(t, filepath.Join(dir, "big"), 1<<20)
	reflink(t, filepath.Join(dir, "big"), filepath.Join(dir, "copy"))
	after, err := s.Usage(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if grown := after.Size - before.Size; grown != 1<<20 {
		t.Errorf("a 1 MiB file and its reflinked copy grew usage by %d, want %d", grown, 1<<20)
	}
}

func reflink(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		t.Fatalf("FICLONE %s to %s: %v", src, dst, err)
	}
}

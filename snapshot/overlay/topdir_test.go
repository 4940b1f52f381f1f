package overlay

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"berth/mount"
)

// TestSnapshotDirIsTopDir checks the allocation hint of markTopDir: the
// snapshot directory carries FS_TOPDIR_FL and holds just fs and work.
func TestSnapshotDirIsTopDir(t *testing.T) {
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
	dir, _, ok := mount.BindOf(mounts)
	if !ok {
		t.Fatalf("mounts %+v", mounts)
	}
	snapDir := filepath.Dir(dir)
	flags, err := inodeFlags(snapDir)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("the filesystem of %s has no inode flags: %v", snapDir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if flags&fsTopdirFL == 0 {
		t.Errorf("%s: inode flags %#x lack FS_TOPDIR_FL", snapDir, flags)
	}
	ents, err := os.ReadDir(snapDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "fs" || names[1] != "work" {
		t.Errorf("snapshot directory holds %v, want [fs work]", names)
	}
}

func inodeFlags(dir string) (uint32, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
}

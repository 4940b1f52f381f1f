package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"berth/snapshot"
)

// DiskUsage measures dir the way du does: allocated blocks, each inode
// counted once however many hard links point at it.
func DiskUsage(ctx context.Context, dir string) (snapshot.Usage, error) {
	var u snapshot.Usage
	type inode struct{ dev, ino uint64 }
	seen := map[inode]struct{}{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		// A running container may delete files while they are counted; what
		// is gone no longer uses disk.
		if errors.Is(err, fs.ErrNotExist) && path != dir {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", path)
		}
		if st.Nlink > 1 && !d.IsDir() {
			key := inode{st.Dev, st.Ino}
			if _, dup := seen[key]; dup {
				return nil
			}
			seen[key] = struct{}{}
		}
		u.Size += st.Blocks * 512
		u.Inodes++
		return nil
	})
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return u, nil
}

// FilesystemName names the filesystem holding path as `docker info` does
// ("extfs", "xfs", "btrfs", ...), or its magic number in hex.
func FilesystemName(path string) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", fmt.Errorf("statfs %s: %w", path, err)
	}
	names := map[int64]string{
		unix.EXT4_SUPER_MAGIC:      "extfs",
		unix.XFS_SUPER_MAGIC:       "xfs",
		unix.BTRFS_SUPER_MAGIC:     "btrfs",
		unix.TMPFS_MAGIC:           "tmpfs",
		unix.OVERLAYFS_SUPER_MAGIC: "overlayfs",
		unix.F2FS_SUPER_MAGIC:      "f2fs",
		unix.NFS_SUPER_MAGIC:       "nfs",
		unix.SQUASHFS_MAGIC:        "squashfs",
		unix.FUSE_SUPER_MAGIC:      "fuse",
		0x2fc12fc1:                 "zfs",
		unix.ECRYPTFS_SUPER_MAGIC:  "ecryptfs",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n, nil
	}
	return fmt.Sprintf("0x%x", st.Type), nil
}

// SupportsDType reports whether the filesystem holding dir fills in the
// entry type in getdents. overlayfs needs it to find whiteouts; without it
// deleted files reappear.
func SupportsDType(dir string) (bool, error) {
	probe, err := openProbeDir(dir)
	if err != nil {
		return false, err
	}
	defer unix.Close(probe.fd)
	defer probe.remove()
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(probe.fd, buf)
		if err != nil {
			return false, fmt.Errorf("getdents %s: %w", probe.path, err)
		}
		if n <= 0 {
			return false, fmt.Errorf("getdents %s: probe file not listed", probe.path)
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for off := 0; off+19 < n; {
			reclen := int(buf[off+16]) | int(buf[off+17])<<8
			typ, name := buf[off+18], cstring(buf[off+19:off+reclen])
			if name == "probe" {
				return typ != unix.DT_UNKNOWN, nil
			}
			off += reclen
		}
	}
}

type probeDir struct {
	fd     int
	path   string
	remove func()
}

func openProbeDir(dir string) (probeDir, error) {
	path, err := os.MkdirTemp(dir, "dtype-")
	if err != nil {
		return probeDir{}, fmt.Errorf("d_type probe: %w", err)
	}
	remove := func() { _ = os.RemoveAll(path) }
	if err := os.WriteFile(filepath.Join(path, "probe"), nil, 0o600); err != nil {
		remove()
		return probeDir{}, fmt.Errorf("d_type probe: %w", err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		remove()
		return probeDir{}, fmt.Errorf("open %s: %w", path, err)
	}
	return probeDir{fd: fd, path: path, remove: remove}, nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

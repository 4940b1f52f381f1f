package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// copier copies a tree preserving everything a layer can carry: owner,
// mode with setuid/setgid/sticky, xattrs, hard links, symlinks, device
// nodes, fifos, sockets and timestamps.
//
// The walk is sequential and creates directories and small entries itself;
// regular files are copied by a bounded group of goroutines, because
// creating a file costs far more than walking to it and those costs
// overlap. Extra hard links wait until every file exists, and directory
// metadata waits until everything inside it exists.
type copier struct {
	files *errgroup.Group
	links map[inode]string // first copy of each multiply linked inode
	later []link           // further names of those inodes
	dirs  []dirMeta        // directories whose metadata is set after their contents
}

type inode struct{ dev, ino uint64 }

type link struct{ first, dst string }

type dirMeta struct {
	dst string
	st  unix.Stat_t
	src string
}

// copyParallelism bounds concurrent file copies.
const copyParallelism = 4

// copyTree makes dst, which must not exist, a copy of src.
func copyTree(ctx context.Context, src, dst string) error {
	files, gctx := errgroup.WithContext(ctx)
	files.SetLimit(copyParallelism)
	c := &copier{files: files, links: map[inode]string{}}
	walkErr := filepath.WalkDir(src, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := gctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		return c.copyEntry(path, filepath.Join(dst, rel))
	})
	if err := errors.Join(walkErr, files.Wait()); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	for _, l := range c.later {
		if err := os.Link(l.first, l.dst); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	}
	// Deepest first: setting a directory's mtime must follow the creation
	// of everything inside it, and a read-only directory must stay writable
	// until its children exist.
	for _, d := range slices.Backward(c.dirs) {
		if err := setMeta(d.src, d.dst, &d.st); err != nil {
			return fmt.Errorf("copy %s: %w", d.src, err)
		}
	}
	return nil
}

func (c *copier) copyEntry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: src, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		c.dirs = append(c.dirs, dirMeta{dst: dst, st: st, src: src})
		return nil
	case unix.S_IFREG:
		key := inode{st.Dev, st.Ino}
		if first, ok := c.links[key]; ok {
			c.later = append(c.later, link{first: first, dst: dst})
			return nil
		}
		if st.Nlink > 1 {
			c.links[key] = dst
		}
		c.files.Go(func() error {
			if err := copyFile(src, dst); err != nil {
				return err
			}
			return setMeta(src, dst, &st)
		})
		return nil
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	default: // character and block devices, fifos, sockets
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return &fs.PathError{Op: "mknod", Path: dst, Err: err}
		}
	}
	return setMeta(src, dst, &st)
}

// copyFile shares the extents when the filesystem can (FICLONE on btrfs,
// xfs) and otherwise copies with copy_file_range, which io.Copy uses for
// two *os.File.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, out.Close())
	}()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		return nil
	}
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// setMeta applies owner, mode, xattrs and times in the order the kernel
// requires: chown clears setuid bits and security.capability, so mode and
// xattrs come after it, and times come last because the others touch ctime
// and (for xattrs on some filesystems) mtime.
func setMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &fs.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &fs.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		val, err := getXattr(src, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			return &fs.PathError{Op: "setxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "listxattr", Path: path, Err: err}
		}
		return splitNull(buf[:n]), nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + name, Path: path, Err: err}
		}
		return buf[:n], nil
	}
}

func splitNull(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}

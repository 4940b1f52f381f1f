// Package fscopy copies directory trees with everything an image layer can
// carry: owners, modes with set-id and sticky bits, extended attributes,
// hard links, symlinks (never followed), device nodes, fifos, sockets and
// timestamps. The vfs snapshotter copies a parent layer with it and the
// volume service fills a new volume from the image.
//
// The walk is sequential and creates directories and small entries itself;
// regular files are copied by a bounded group of goroutines, because
// creating a file costs far more than walking to it. Extra hard links wait
// until every file exists, and directory metadata waits until everything
// inside it exists.
package fscopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// workers bounds concurrent file copies: a few files at once keep the disk
// busy while the walk goes on.
const workers = 8

// Tree makes dst a copy of the tree at src. dst must not exist, or be an
// empty directory, which then takes src's owner, mode and times.
func Tree(ctx context.Context, src, dst string) error {
	files, gctx := errgroup.WithContext(ctx)
	files.SetLimit(workers)
	c := &copier{ctx: gctx, files: files, first: map[inode]string{}}
	walkErr := filepath.WalkDir(src, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		return c.entry(path, filepath.Join(dst, rel), rel == ".")
	})
	if err := errors.Join(walkErr, files.Wait()); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := c.finish(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

type inode struct{ dev, ino uint64 }

type copier struct {
	ctx   context.Context
	files *errgroup.Group
	n     int
	first map[inode]string // first copy of each multiply linked inode
	links [][2]string      // (first copy, another name), made once files exist
	dirs  [][2]string      // (src, dst), metadata set after their contents
}

func (c *copier) entry(src, dst string, root bool) error {
	if c.n++; c.n%64 == 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: src, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil && !(root && errors.Is(err, fs.ErrExist)) {
			return err
		}
		c.dirs = append(c.dirs, [2]string{src, dst})
		return nil
	case unix.S_IFREG:
		key := inode{st.Dev, st.Ino}
		if first, ok := c.first[key]; ok {
			c.links = append(c.links, [2]string{first, dst})
			return nil
		}
		if st.Nlink > 1 {
			c.first[key] = dst
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

// finish makes the hard links, then sets the directories' metadata deepest
// first: a directory's mtime must follow the creation of everything inside
// it, and a read-only directory must stay writable until its children
// exist. The walk's stat is not reused: copying changed the source's atime.
func (c *copier) finish() error {
	for _, l := range c.links {
		if err := os.Link(l[0], l[1]); err != nil {
			return err
		}
	}
	for _, d := range slices.Backward(c.dirs) {
		var st unix.Stat_t
		if err := unix.Lstat(d[0], &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: d[0], Err: err}
		}
		if err := setMeta(d[0], d[1], &st); err != nil {
			return err
		}
	}
	return nil
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

// copyXattrs copies the extended attributes, leaving out overlayfs's own
// bookkeeping and what the destination filesystem does not support or
// refuses (a volume on a filesystem without trusted.* or security.*).
func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val, err := getXattr(src, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return &fs.PathError{Op: "setxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(path, buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, len(buf)*4)
			continue
		case errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case err != nil:
			return nil, &fs.PathError{Op: "listxattr", Path: path, Err: err}
		}
		var names []string
		for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, nil
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

package volume

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

// CopyUp fills an empty volume directory dst with the tree at src (the
// image's content at the mount's destination, in the container's mounted
// root filesystem), as Docker does for a new volume: owners, modes,
// timestamps, extended attributes, symlinks, hard links and device nodes
// are kept, and dst takes src's own owner and mode. Nothing is copied when
// dst is not empty or src is not a directory; copied reports whether
// anything was. Symlinks are copied as links, never followed.
func CopyUp(ctx context.Context, src, dst string) (copied bool, err error) {
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("copy-up from %s: %w", src, err)
	}
	ents, err := os.ReadDir(dst)
	if err != nil {
		return false, fmt.Errorf("copy-up into %s: %w", dst, err)
	}
	if len(ents) > 0 {
		return false, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	// File creation dominates (the kernel's, per directory): a few files
	// at once keep the disk busy while the walk goes on.
	g.SetLimit(copyWorkers)
	c := &copier{ctx: gctx, g: g, first: map[[2]uint64]string{}}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return c.entry(p, filepath.Join(dst, rel), rel == ".")
	})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err == nil {
		err = c.finish()
	}
	if err != nil {
		return false, fmt.Errorf("copy-up from %s: %w", src, err)
	}
	return true, nil
}

const copyWorkers = 8

type copier struct {
	ctx   context.Context
	g     *errgroup.Group
	n     int
	first map[[2]uint64]string // (dev, inode) -> its first copy, for hard links
	links [][2]string          // (first copy, another name), made once copies are done
	dirs  [][2]string          // (src, dst), metadata set after their content
}

func (c *copier) entry(src, dst string, root bool) error {
	if c.n++; c.n%256 == 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if !root {
			if err := os.Mkdir(dst, 0o700); err != nil {
				return err
			}
		}
		c.dirs = append(c.dirs, [2]string{src, dst})
		return nil
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := c.first[key]; ok && st.Nlink > 1 {
			c.links = append(c.links, [2]string{first, dst})
			return nil
		}
		if st.Nlink > 1 {
			c.first[key] = dst
		}
		c.g.Go(func() error {
			if err := copyFile(src, dst); err != nil {
				return err
			}
			return copyMeta(src, dst, &st)
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
	default: // devices, fifos, sockets
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	return copyMeta(src, dst, &st)
}

// finish makes the hard links, then sets the directories' metadata
// deepest first, once nothing more is written into them (which would
// change their mtime).
func (c *copier) finish() error {
	for _, l := range c.links {
		if err := os.Link(l[0], l[1]); err != nil {
			return err
		}
	}
	for _, d := range slices.Backward(c.dirs) {
		var st unix.Stat_t
		if err := unix.Lstat(d[0], &st); err != nil {
			return err
		}
		if err := copyMeta(d[0], d[1], &st); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// copyMeta gives dst src's owner, mode, extended attributes and times.
// The mode is set after the owner, as chown clears set-id bits.
func copyMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// copyXattrs copies what the filesystems support, leaving out overlayfs's
// own bookkeeping.
func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		return nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(src, buf)
	if err != nil {
		return nil
	}
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		vsize, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(src, name, val); err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val[:vsize], 0); err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("xattr %s of %s: %w", name, dst, err)
		}
	}
	return nil
}

package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// node is one filesystem entry met by a walk. dir and name locate it for
// *at syscalls while the walk is inside its parent.
type node struct {
	rel    string // slash-separated, relative to the tree root
	name   string
	dir    *os.File
	st     unix.Stat_t
	link   string
	xattrs map[string]string // trusted.overlay.* excluded
	opaque bool              // trusted.overlay.opaque=y
	hasSt  bool
}

func (n *node) fmt() uint32 { return n.st.Mode & unix.S_IFMT }
func (n *node) isDir() bool { return n.fmt() == unix.S_IFDIR }

// isWhiteoutDev reports an overlayfs whiteout: a 0/0 character device.
func (n *node) isWhiteoutDev() bool { return n.fmt() == unix.S_IFCHR && n.st.Rdev == 0 }

// statNode reads name in dir without following symlinks. It returns nil for
// an entry that vanished.
func statNode(dir *os.File, name, rel string) (*node, error) {
	n := &node{rel: rel, name: name, dir: dir, hasSt: true}
	dfd := int(dir.Fd())
	err := unix.Fstatat(dfd, name, &n.st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", rel, err)
	}
	if n.fmt() == unix.S_IFLNK {
		buf := make([]byte, unix.PathMax)
		k, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return nil, fmt.Errorf("readlink %s: %w", rel, err)
		}
		n.link = string(buf[:k])
	}
	if err := n.readXattrs(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *node) readXattrs() error {
	p := procPath(int(n.dir.Fd()), n.name)
	names, err := listXattrs(p)
	if err != nil {
		return fmt.Errorf("list xattrs of %s: %w", n.rel, err)
	}
	for _, k := range names {
		if strings.HasPrefix(k, "trusted.overlay.") {
			switch k {
			case overlayOpaque:
				v, err := getXattr(p, k)
				if err != nil {
					return fmt.Errorf("xattr %s of %s: %w", k, n.rel, err)
				}
				n.opaque = string(v) == "y"
			case "trusted.overlay.redirect", "trusted.overlay.metacopy":
				return fmt.Errorf("%s carries %s: overlay redirect_dir/metacopy upper dirs cannot be diffed: %w", n.rel, k, errdefs.ErrFailedPrecondition)
			}
			continue
		}
		v, err := getXattr(p, k)
		if err != nil {
			return fmt.Errorf("xattr %s of %s: %w", k, n.rel, err)
		}
		if n.xattrs == nil {
			n.xattrs = make(map[string]string)
		}
		n.xattrs[k] = string(v)
	}
	return nil
}

func listXattrs(p string) ([]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range bytes.Split(buf[:size], []byte{0}) {
		if len(b) > 0 {
			out = append(out, string(b))
		}
	}
	return out, nil
}

func getXattr(p, name string) ([]byte, error) {
	size, err := unix.Lgetxattr(p, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	size, err = unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:size], nil
}

func openSubdir(dir *os.File, name, rel string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", rel, err)
	}
	return os.NewFile(uintptr(fd), rel), nil
}

func openTree(root string) (*os.File, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open tree %s: %w", root, err)
	}
	return os.NewFile(uintptr(fd), root), nil
}

func sortedNames(dir *os.File) ([]string, error) {
	if dir == nil {
		return nil, nil
	}
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir.Name(), err)
	}
	slices.Sort(names)
	return names, nil
}

func openFile(n *node) (*os.File, error) {
	fd, err := unix.Openat(int(n.dir.Fd()), n.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", n.rel, err)
	}
	return os.NewFile(uintptr(fd), n.rel), nil
}

// sameMeta compares what both Docker and containerd treat as a change for
// any entry: type, permissions, owner, device number, link target, xattrs.
func sameMeta(l, u *node) bool {
	return l.st.Mode == u.st.Mode && l.st.Uid == u.st.Uid && l.st.Gid == u.st.Gid &&
		l.st.Rdev == u.st.Rdev && l.link == u.link && maps.Equal(l.xattrs, u.xattrs)
}

// sameEntry decides whether a non-directory is unchanged. Directories never
// compare size or mtime (moby#9874). For files, equal size and nanosecond
// mtime mean unchanged; when both mtimes are whole seconds (a tar applied
// them, so they may have been truncated) the content decides.
func sameEntry(l, u *node) (bool, error) {
	if !sameMeta(l, u) {
		return false, nil
	}
	if l.isDir() {
		return true, nil
	}
	if l.st.Dev == u.st.Dev && l.st.Ino == u.st.Ino {
		return true, nil
	}
	if l.st.Size != u.st.Size || l.st.Mtim != u.st.Mtim {
		return false, nil
	}
	if l.fmt() != unix.S_IFREG || l.st.Mtim.Nsec != 0 || l.st.Size == 0 {
		return true, nil
	}
	return sameContent(l, u)
}

func sameContent(l, u *node) (bool, error) {
	lf, err := openFile(l)
	if err != nil {
		return false, err
	}
	defer lf.Close()
	uf, err := openFile(u)
	if err != nil {
		return false, err
	}
	defer uf.Close()
	lb := make([]byte, 64<<10)
	ub := make([]byte, 64<<10)
	for {
		ln, lerr := io.ReadFull(lf, lb)
		un, uerr := io.ReadFull(uf, ub)
		if ln != un || !bytes.Equal(lb[:ln], ub[:un]) {
			return false, nil
		}
		lend := errors.Is(lerr, io.EOF) || errors.Is(lerr, io.ErrUnexpectedEOF)
		uend := errors.Is(uerr, io.EOF) || errors.Is(uerr, io.ErrUnexpectedEOF)
		switch {
		case lerr != nil && !lend:
			return false, fmt.Errorf("read %s: %w", l.rel, lerr)
		case uerr != nil && !uend:
			return false, fmt.Errorf("read %s: %w", u.rel, uerr)
		case lend || uend:
			return lend == uend, nil
		}
	}
}

// visitFunc receives changes in tar order: a directory before its children,
// deletions in a directory before its other children, names sorted.
type visitFunc func(kind ChangeKind, n *node) error

// walker merges or scans trees and reports changes to visit. Directories
// that are unchanged themselves but hold changes are reported as
// ChangeModify just before their first changed descendant (Docker reports
// them and a layer needs their header).
type walker struct {
	ctx     context.Context
	visit   visitFunc
	allDirs bool // report every directory of upper (overlay diff, Tar)
	pending []*node
	flushed int
}

func (w *walker) emit(kind ChangeKind, n *node) error {
	for ; w.flushed < len(w.pending); w.flushed++ {
		if err := w.visit(ChangeModify, w.pending[w.flushed]); err != nil {
			return err
		}
	}
	return w.visit(kind, n)
}

func (w *walker) push(n *node) { w.pending = append(w.pending, n) }

func (w *walker) pop() {
	w.pending = w.pending[:len(w.pending)-1]
	w.flushed = min(w.flushed, len(w.pending))
}

func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return path.Join(rel, name)
}

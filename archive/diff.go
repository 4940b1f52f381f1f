package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// Diff writes a layer tar of the changes of upper relative to lower.
//
// WhiteoutDelete: lower and upper are complete trees (lower "" = empty);
// they are compared like Docker's ChangesDirs (mode, owner, device, xattrs,
// link target, and for non-directories size and mtime, with the content
// compared only when both mtimes are whole seconds) and deletions become
// explicit `.wh.<name>` entries.
// WhiteoutOverlay: upper is an overlayfs upperdir and lower is ignored:
// every upper entry is written, a 0/0 character device becomes
// `.wh.<name>` and trusted.overlay.opaque=y becomes `<dir>/.wh..wh..opq`
// right after its directory.
//
// The output is deterministic: names sorted depth first, deletions before
// the other children of their directory, numeric owners without names,
// whole-second mtimes, no atime or ctime, PAX format. Identical trees give
// byte-identical tars.
func Diff(ctx context.Context, w io.Writer, lower, upper string, mode WhiteoutMode) error {
	tw := newTarWriter(w, mode)
	if mode == WhiteoutOverlay {
		lower = ""
	}
	if err := walkChanges(ctx, lower, upper, mode, mode == WhiteoutOverlay, tw.visit); err != nil {
		return fmt.Errorf("diff %s: %w", upper, err)
	}
	if err := tw.tw.Close(); err != nil {
		return fmt.Errorf("diff %s: finish tar: %w", upper, err)
	}
	return nil
}

// Tar writes the tree at root as a tar, deterministically (see Diff), with
// hardlinked files after the first as hardlink entries. Overlay markers are
// not translated: Tar is for complete trees (`docker export`).
func Tar(ctx context.Context, w io.Writer, root string) error {
	dir, err := openTree(root)
	if err != nil {
		return err
	}
	defer dir.Close()
	tw := newTarWriter(w, WhiteoutDelete)
	wk := &walker{ctx: ctx, visit: tw.visit, allDirs: true}
	if err := wk.addDir(dir, ""); err != nil {
		return fmt.Errorf("tar %s: %w", root, err)
	}
	if err := tw.tw.Close(); err != nil {
		return fmt.Errorf("tar %s: finish: %w", root, err)
	}
	return nil
}

type inode struct{ dev, ino uint64 }

type tarWriter struct {
	tw    *tar.Writer
	mode  WhiteoutMode
	links map[inode]string
	buf   []byte
}

func newTarWriter(w io.Writer, mode WhiteoutMode) *tarWriter {
	return &tarWriter{
		tw:    tar.NewWriter(w),
		mode:  mode,
		links: make(map[inode]string),
		buf:   make([]byte, copyBufSize),
	}
}

func (t *tarWriter) visit(kind ChangeKind, n *node) error {
	if kind == ChangeDelete {
		return t.whiteout(n)
	}
	if n.fmt() == unix.S_IFSOCK {
		return nil // sockets cannot be archived (Docker skips them too)
	}
	hdr := header(n)
	if n.fmt() != unix.S_IFDIR && n.st.Nlink > 1 {
		key := inode{n.st.Dev, n.st.Ino}
		if first, ok := t.links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return t.write(hdr)
		}
		t.links[key] = n.rel
	}
	if err := t.write(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		if err := t.content(n, hdr.Size); err != nil {
			return err
		}
	}
	if t.mode == WhiteoutOverlay && n.opaque && n.isDir() {
		return t.write(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     path.Join(n.rel, whiteoutOpaque),
			Mode:     hdr.Mode & 0o777,
			Uid:      hdr.Uid,
			Gid:      hdr.Gid,
			ModTime:  hdr.ModTime,
			Format:   tar.FormatPAX,
		})
	}
	return nil
}

func (t *tarWriter) write(hdr *tar.Header) error {
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header %s: %w", hdr.Name, err)
	}
	return nil
}

// whiteout writes `.wh.<name>`. An overlay whiteout device lends its owner
// and mtime; a deletion found by comparing trees has no inode of its own
// and gets fixed values so output stays deterministic.
func (t *tarWriter) whiteout(n *node) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     path.Join(path.Dir(n.rel), whiteoutPrefix+path.Base(n.rel)),
		Mode:     0o600,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	}
	if n.hasSt {
		hdr.Uid, hdr.Gid = int(n.st.Uid), int(n.st.Gid)
		hdr.ModTime = time.Unix(n.st.Mtim.Sec, 0)
	}
	return t.write(hdr)
}

func (t *tarWriter) content(n *node, size int64) error {
	f, err := openFile(n)
	if err != nil {
		return err
	}
	defer f.Close()
	copied, err := io.CopyBuffer(t.tw, io.LimitReader(f, size), t.buf)
	if err != nil {
		return fmt.Errorf("copy %s: %w", n.rel, err)
	}
	if copied != size {
		return fmt.Errorf("copy %s: file shrank from %d to %d bytes while archiving", n.rel, size, copied)
	}
	return nil
}

// header builds the deterministic tar header of n.
func header(n *node) *tar.Header {
	hdr := &tar.Header{
		Name:    n.rel,
		Mode:    int64(n.st.Mode & 0o7777),
		Uid:     int(n.st.Uid),
		Gid:     int(n.st.Gid),
		ModTime: time.Unix(n.st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	switch n.fmt() {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = n.link
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if n.fmt() == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(n.st.Rdev))
		hdr.Devminor = int64(unix.Minor(n.st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = n.st.Size
	}
	if len(n.xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(n.xattrs))
		for k, v := range n.xattrs {
			hdr.PAXRecords[paxXattr+k] = v
		}
	}
	return hdr
}

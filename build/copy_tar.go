package build

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"berth/archive"
	"berth/container/spec"
	"berth/errdefs"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// entry is one file of a COPY layer.
type entry struct {
	hdr  *tar.Header
	tree fileTree // where a regular file's content is (rel), nil for data or none
	rel  string
	data []byte
}

// layerWriter writes the layer of a COPY or ADD. It looks at the image
// the files go into (root, mounted read-only) to follow its symlinks in
// the destination, to create only the missing parent directories, and to
// find --chown's names in its /etc/passwd and /etc/group.
type layerWriter struct {
	root     string
	op       *copyOp
	uid, gid int
	owned    bool // --chown given
	now      time.Time
	entries  []*entry
	index    map[string]int
}

func newLayerWriter(root string, op *copyOp) (*layerWriter, error) {
	w := &layerWriter{root: root, op: op, now: time.Now().Truncate(time.Second), index: map[string]int{}}
	if op.chown != "" {
		u, err := spec.ResolveUser(root, op.chown, nil)
		if err != nil {
			return nil, fmt.Errorf("unable to convert uid/gid chown string to host mapping: %w", err)
		}
		w.uid, w.gid, w.owned = int(u.UID), int(u.GID), true
		// As BuildKit: a user named alone brings its primary group from
		// /etc/passwd, a number alone is the group's number too.
		if _, err := strconv.Atoi(op.chown); err == nil {
			w.gid = w.uid
		}
	}
	return w, nil
}

// add puts an entry in the layer; a later entry for the same path
// replaces the earlier one in place.
func (w *layerWriter) add(e *entry) {
	name := strings.TrimSuffix(e.hdr.Name, "/")
	if i, ok := w.index[name]; ok {
		w.entries[i] = e
		return
	}
	w.index[name] = len(w.entries)
	w.entries = append(w.entries, e)
}

// resolve follows the image's symlinks in p and returns the path they
// lead to, relative to the image root.
func (w *layerWriter) resolve(p string) (string, error) {
	real, err := securejoin.SecureJoin(w.root, p)
	if err != nil {
		return "", fmt.Errorf("destination %s: %w", p, err)
	}
	rel, err := filepath.Rel(w.root, real)
	if err != nil {
		return "", err
	}
	return imageRel(filepath.ToSlash(rel)), nil
}

// mkdirs adds the directories of rel the image lacks, owned by the
// --chown user like Docker's.
func (w *layerWriter) mkdirs(rel string) error {
	if rel == "" {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(rel, "/") {
		cur = path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(w.root, cur))
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cannot copy to /%s: /%s is not a directory", rel, cur)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if _, ok := w.index[cur]; ok {
			continue
		}
		w.add(&entry{hdr: w.header(cur+"/", tar.TypeDir, 0o755, w.now)})
	}
	return nil
}

func (w *layerWriter) header(name string, typ byte, mode fs.FileMode, mtime time.Time) *tar.Header {
	return &tar.Header{Name: name, Typeflag: typ, Mode: int64(tarMode(mode)), Uid: w.uid, Gid: w.gid,
		ModTime: mtime, Format: tar.FormatPAX}
}

// tarMode turns a Go file mode into the permission bits of a tar header.
func tarMode(m fs.FileMode) uint32 {
	out := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// mode applies --chmod to files and directories.
func (w *layerWriter) mode(m fs.FileMode) fs.FileMode {
	if w.op.hasMode {
		return w.op.chmod
	}
	return m
}

// write collects every source's entries and writes the layer tar.
func (w *layerWriter) write(out io.Writer) error {
	dest, err := w.resolve(w.op.dest)
	if err != nil {
		return err
	}
	fi, err := os.Stat(filepath.Join(w.root, dest))
	destIsDir := w.op.destDir || (err == nil && fi.IsDir())
	var archives []source
	for _, src := range w.op.sources {
		isDir := src.info != nil && src.info.IsDir()
		var target, parent string
		switch {
		case isDir || src.archive:
			target, parent = dest, dest
		case destIsDir:
			target, parent = imageRel(path.Join(dest, src.name)), dest
		default:
			target, parent = dest, imageRel(path.Dir("/"+dest))
		}
		if err := w.mkdirs(parent); err != nil {
			return err
		}
		switch {
		case src.archive:
			archives = append(archives, src)
		case src.tree == nil:
			h := w.header(target, tar.TypeReg, w.mode(src.mode), time.Unix(0, 0))
			h.Size = int64(len(src.data))
			w.add(&entry{hdr: h, data: src.data})
		case isDir:
			if err := w.addDir(src.tree, src.rel, target); err != nil {
				return err
			}
		default:
			if err := w.addFile(src.tree, src.rel, target, src.info, src); err != nil {
				return err
			}
		}
	}
	return w.emit(out, dest, archives)
}

// addDir adds a directory's contents (not the directory itself) under
// target.
func (w *layerWriter) addDir(tree fileTree, dir, target string) error {
	return walkTree(tree, dir, func(rel string, fi fs.FileInfo) error {
		if rel == dir {
			return nil
		}
		sub := strings.TrimPrefix(strings.TrimPrefix(rel, dir), "/")
		return w.addFile(tree, rel, imageRel(path.Join(target, sub)), fi, source{})
	})
}

// addFile adds one file system object; sockets and devices are skipped,
// hard links become copies.
func (w *layerWriter) addFile(tree fileTree, rel, name string, fi fs.FileInfo, src source) error {
	mtime := fi.ModTime().Truncate(time.Second)
	switch m := fi.Mode(); {
	case m.IsDir():
		w.add(&entry{hdr: w.header(name+"/", tar.TypeDir, w.mode(m), mtime)})
	case m.IsRegular():
		perm := m
		if src.mode != 0 {
			perm = src.mode
		}
		h := w.header(name, tar.TypeReg, w.mode(perm), mtime)
		h.Size = fi.Size()
		w.add(&entry{hdr: h, tree: tree, rel: rel})
	case m&fs.ModeSymlink != 0:
		target, err := tree.Readlink(rel)
		if err != nil {
			return err
		}
		h := w.header(name, tar.TypeSymlink, 0o777, mtime)
		h.Linkname = target
		w.add(&entry{hdr: h})
	case m&fs.ModeNamedPipe != 0:
		w.add(&entry{hdr: w.header(name, tar.TypeFifo, w.mode(m), mtime)})
	}
	return nil
}

// emit writes the collected entries, then the contents of ADD's archives
// under dest.
func (w *layerWriter) emit(out io.Writer, dest string, archives []source) error {
	tw := tar.NewWriter(out)
	buf := make([]byte, 1<<20)
	for _, e := range w.entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		switch {
		case e.data != nil:
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		case e.tree != nil:
			if err := copyFileInto(tw, e.tree, e.rel, e.hdr.Size, buf); err != nil {
				return err
			}
		}
	}
	for _, src := range archives {
		if err := w.extract(tw, src, dest, buf); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFileInto(tw *tar.Writer, tree fileTree, rel string, size int64, buf []byte) error {
	f, err := tree.Open(rel)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(tw, io.LimitReader(f, size), buf)
	if err != nil {
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	if n != size {
		return fmt.Errorf("copy %s: the file changed size while it was copied", rel)
	}
	return nil
}

// extract copies an ADD archive's entries under dest, names cleaned and
// confined below it, owners kept unless --chown is given.
func (w *layerWriter) extract(tw *tar.Writer, src source, dest string, buf []byte) error {
	f, err := src.tree.Open(src.rel)
	if err != nil {
		return err
	}
	defer f.Close()
	plain, _, err := archive.DecompressStream(f)
	if err != nil {
		return fmt.Errorf("extract %s: %w", src.name, err)
	}
	defer plain.Close()
	tr := tar.NewReader(plain)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", src.name, err)
		}
		name := imageRel(path.Join(dest, path.Clean("/"+h.Name)))
		if _, collected := w.index[name]; name == "" || collected || seen[name] {
			continue
		}
		seen[name] = true
		out := *h
		out.Name = name
		if h.Typeflag == tar.TypeDir {
			out.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			out.Linkname = imageRel(path.Join(dest, path.Clean("/"+h.Linkname)))
		}
		if w.owned {
			out.Uid, out.Gid, out.Uname, out.Gname = w.uid, w.gid, "", ""
		}
		out.Format = tar.FormatPAX
		if err := tw.WriteHeader(&out); err != nil {
			return fmt.Errorf("extract %s: %w", src.name, err)
		}
		if _, err := io.CopyBuffer(tw, tr, buf); err != nil {
			return fmt.Errorf("extract %s: %w", src.name, err)
		}
	}
}

// isArchive reports whether a file is a tar, possibly compressed, which
// ADD extracts.
func isArchive(tree fileTree, rel string) bool {
	f, err := tree.Open(rel)
	if err != nil {
		return false
	}
	defer f.Close()
	plain, _, err := archive.DecompressStream(f)
	if err != nil {
		return false
	}
	defer plain.Close()
	head, _ := bufio.NewReaderSize(plain, 1024).Peek(512)
	return len(head) == 512 && isTar(head) && !allZero(head)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// create writes one non-whiteout entry named base inside the open directory
// dfd. Every syscall is relative to dfd and never follows a final symlink.
// Creation is tried first and what is in the way removed only on EEXIST:
// layers are mostly unpacked into empty directories.
func (a *applier) create(dfd int, base, rel string, hdr *tar.Header, content io.Reader) error {
	if hdr.Typeflag == tar.TypeLink {
		return a.hardlink(dfd, base, rel, hdr)
	}
	isDir := hdr.Typeflag == tar.TypeDir
	fd, err := makeNode(dfd, base, hdr)
	if errors.Is(err, unix.EEXIST) {
		if err = a.removeExisting(dfd, base, rel, isDir); err == nil {
			fd, err = makeNode(dfd, base, hdr)
		}
		if isDir && errors.Is(err, unix.EEXIST) {
			err = nil // dir over dir: attributes only
		}
	}
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	switch {
	case fd >= 0:
		return a.writeFile(fd, dfd, base, hdr, content)
	case isDir:
		return a.makeDirAttrs(dfd, base, rel, hdr)
	}
	return a.setAttrs(dfd, base, hdr)
}

// makeNode creates the inode of an entry; for a regular file it returns
// the new file open for writing, else -1.
func makeNode(dfd int, base string, hdr *tar.Header) (int, error) {
	switch hdr.Typeflag {
	case tar.TypeDir:
		return -1, unix.Mkdirat(dfd, base, 0o700)
	case tar.TypeSymlink:
		return -1, unix.Symlinkat(hdr.Linkname, dfd, base)
	case tar.TypeFifo:
		return -1, unix.Mknodat(dfd, base, unix.S_IFIFO|0o600, 0)
	case tar.TypeChar, tar.TypeBlock:
		kind := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		return -1, unix.Mknodat(dfd, base, kind|0o600, int(dev))
	}
	fd, err := unix.Openat(dfd, base, fileOpenFlags, 0o600)
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// removeExisting clears the way for a new entry: a non-directory is
// unlinked, a directory is kept only when the new entry is a directory too.
func (a *applier) removeExisting(dfd int, base, rel string, keepDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat existing: %w", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if keepDir {
			return nil
		}
		a.cache.drop()
		return a.root.RemoveAll(rel)
	case unix.S_IFLNK:
		a.cache.drop()
	}
	return unix.Unlinkat(dfd, base, 0)
}

// writeFile fills the new file fd from content and sets its attributes
// through the descriptor. The descriptor is used with plain syscalls: an
// *os.File would register it with the runtime poller for nothing.
func (a *applier) writeFile(fd, dfd int, base string, hdr *tar.Header, content io.Reader) error {
	w := fdWriter{fd: fd}
	_, err := io.CopyBuffer(&w, onlyReader{content}, a.buf)
	switch {
	case w.err != nil:
		err = fmt.Errorf("layer entry %q: write content: %w", hdr.Name, w.err)
	case err != nil:
		err = fmt.Errorf("layer entry %q: read content: %w: %w", hdr.Name, err, errdefs.ErrInvalidArgument)
	default:
		err = a.fileAttrs(fd, hdr)
	}
	if cerr := unix.Close(fd); cerr != nil && err == nil {
		err = fmt.Errorf("layer entry %q: close: %w", hdr.Name, cerr)
	}
	if err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(dfd, base, headerTimes(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: set times: %w", hdr.Name, err)
	}
	return nil
}

// fileAttrs applies ownership, mode and xattrs to an open file in the
// order that keeps each: chown clears setuid bits and
// security.capability, so it comes first.
func (a *applier) fileAttrs(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("layer entry %q: chmod: %w", hdr.Name, err)
	}
	return a.setXattrs(hdr, func(name string, value []byte) error {
		return unix.Fsetxattr(fd, name, value, 0)
	})
}

// makeDirAttrs opens the directory an entry just made (or kept), caches it
// for the entries below it that usually follow, and sets its attributes.
// Its times wait until its children are written.
func (a *applier) makeDirAttrs(dfd int, base, rel string, hdr *tar.Header) error {
	d := a.cache.get(rel)
	if d == nil {
		fd, err := unix.Openat(dfd, base, dirOpenFlags|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("layer entry %q: open directory: %w", hdr.Name, err)
		}
		d = a.cache.add(rel, fd)
	}
	if err := a.fileAttrs(d.fd, hdr); err != nil {
		return err
	}
	a.dirs = append(a.dirs, dirTime{rel: rel, ts: [2]unix.Timespec(headerTimes(hdr))})
	return nil
}

func (a *applier) hardlink(dfd int, base, rel string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("layer entry %q: hardlink target: %w", hdr.Name, err)
	}
	if target == "." {
		return fmt.Errorf("layer entry %q: hardlink to root: %w", hdr.Name, errdefs.ErrInvalidArgument)
	}
	return a.withParent(hdr.Name, target, false, func(tfd int) error {
		// linkat without AT_SYMLINK_FOLLOW links a symlink itself, so a
		// target that is a symlink pointing outside root stays harmless data.
		err := unix.Linkat(tfd, path.Base(target), dfd, base, 0)
		if errors.Is(err, unix.EEXIST) {
			if err = a.removeExisting(dfd, base, rel, false); err == nil {
				err = unix.Linkat(tfd, path.Base(target), dfd, base, 0)
			}
		}
		if err != nil {
			return fmt.Errorf("layer entry %q: hardlink to %q: %w", hdr.Name, hdr.Linkname, err)
		}
		return nil
	})
}

// setAttrs sets the attributes of a symlink, device or FIFO by name (none
// can be opened for this), chown first as in fileAttrs.
func (a *applier) setAttrs(dfd int, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Fchmodat(dfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("layer entry %q: chmod: %w", hdr.Name, err)
		}
	}
	p := procPath(dfd, base)
	err := a.setXattrs(hdr, func(name string, value []byte) error {
		return unix.Lsetxattr(p, name, value, 0)
	})
	if err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(dfd, base, headerTimes(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: set times: %w", hdr.Name, err)
	}
	return nil
}

// setXattrs applies the entry's SCHILY.xattr records in name order with
// set, except overlay's own bookkeeping, which never travels in layers.
func (a *applier) setXattrs(hdr *tar.Header, set func(name string, value []byte) error) error {
	if len(hdr.PAXRecords) == 0 {
		return nil
	}
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k[len(paxXattr):]
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		err := set(name, []byte(hdr.PAXRecords[k]))
		if errors.Is(err, unix.ENOTSUP) {
			a.log.Warn("filesystem cannot hold xattr; dropped", "entry", hdr.Name, "xattr", name)
			continue
		}
		if err != nil {
			return fmt.Errorf("layer entry %q: set xattr %s: %w", hdr.Name, name, err)
		}
	}
	return nil
}

func headerTimes(hdr *tar.Header) []unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return []unix.Timespec{
		unix.NsecToTimespec(atime.UnixNano()),
		unix.NsecToTimespec(hdr.ModTime.UnixNano()),
	}
}

// fdWriter writes to a raw descriptor, remembering a write error so that
// it is not mistaken for a malformed layer.
type fdWriter struct {
	fd  int
	err error
}

func (w *fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(w.fd, p[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			w.err = err
			return n, err
		}
		n += m
	}
	return n, nil
}

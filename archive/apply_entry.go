package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// create writes one non-whiteout entry named base inside the open directory
// dir. Every syscall is relative to dir and never follows a final symlink.
func (a *applier) create(dir *os.File, base, rel string, hdr *tar.Header, content io.Reader) error {
	dfd := int(dir.Fd())
	isDir := hdr.Typeflag == tar.TypeDir
	if err := a.removeExisting(dir, base, rel, isDir); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = unix.Mkdirat(dfd, base, 0o700)
		if errors.Is(err, unix.EEXIST) {
			err = nil // dir over dir: attributes only
		}
	case tar.TypeSymlink:
		err = unix.Symlinkat(hdr.Linkname, dfd, base)
	case tar.TypeLink:
		return a.hardlink(dir, base, hdr)
	case tar.TypeFifo:
		err = unix.Mknodat(dfd, base, unix.S_IFIFO|0o600, 0)
	case tar.TypeChar, tar.TypeBlock:
		kind := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		err = unix.Mknodat(dfd, base, kind|0o600, int(dev))
	default:
		err = a.writeFile(dfd, base, hdr, content)
	}
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	return a.setAttrs(dir, base, hdr, isDir)
}

// removeExisting clears the way for a new entry: a non-directory is
// unlinked, a directory is kept only when the new entry is a directory too.
func (a *applier) removeExisting(dir *os.File, base, rel string, keepDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat existing: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(int(dir.Fd()), base, 0)
	}
	if keepDir {
		return nil
	}
	return a.root.RemoveAll(rel)
}

func (a *applier) writeFile(dfd int, base string, hdr *tar.Header, content io.Reader) error {
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	_, err = io.CopyBuffer(onlyWriter{f}, onlyReader{content}, a.buf)
	if err != nil {
		f.Close()
		return fmt.Errorf("write content: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return f.Close()
}

func (a *applier) hardlink(dir *os.File, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("layer entry %q: hardlink target: %w", hdr.Name, err)
	}
	if target == "." {
		return fmt.Errorf("layer entry %q: hardlink to root: %w", hdr.Name, errdefs.ErrInvalidArgument)
	}
	return a.withParent(hdr.Name, target, false, func(tdir *os.File) error {
		// linkat without AT_SYMLINK_FOLLOW links a symlink itself, so a
		// target that is a symlink pointing outside root stays harmless data.
		err := unix.Linkat(int(tdir.Fd()), path.Base(target), int(dir.Fd()), base, 0)
		if err != nil {
			return fmt.Errorf("layer entry %q: hardlink to %q: %w", hdr.Name, hdr.Linkname, err)
		}
		return nil
	})
}

// setAttrs applies ownership, mode, xattrs and times in the order that keeps
// each: chown clears setuid bits and security.capability, so it comes first.
// Directory times are deferred until their children are written.
func (a *applier) setAttrs(dir *os.File, base string, hdr *tar.Header, isDir bool) error {
	dfd := int(dir.Fd())
	if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Fchmodat(dfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("layer entry %q: chmod: %w", hdr.Name, err)
		}
	}
	if err := a.setXattrs(dir, base, hdr); err != nil {
		return err
	}
	ts := headerTimes(hdr)
	if isDir {
		rel, _ := cleanName(hdr.Name)
		a.dirs = append(a.dirs, dirTime{rel: rel, ts: [2]unix.Timespec(ts)})
		return nil
	}
	if err := unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: set times: %w", hdr.Name, err)
	}
	return nil
}

func (a *applier) setXattrs(dir *os.File, base string, hdr *tar.Header) error {
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	p := procPath(dir, base)
	for _, k := range keys {
		name := k[len(paxXattr):]
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue // overlay's own bookkeeping never travels in layers
		}
		err := unix.Lsetxattr(p, name, []byte(hdr.PAXRecords[k]), 0)
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

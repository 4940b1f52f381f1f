package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// extractTar unpacks a copy from a container into dir. Entries are rooted
// at root (the copied path's base name, or "." for a directory's
// contents); that root is renamed to name ("" keeps it). Everything is
// written through an os.Root, so no entry or symlink can reach outside dir.
// Ownership is not restored: files belong to whoever runs the copy.
func extractTar(r io.Reader, dir, root, name string) error {
	rt, err := os.OpenRoot(dir)
	if errors.Is(err, os.ErrNotExist) {
		return errNoSuchDirectory
	}
	if err != nil {
		return err
	}
	defer rt.Close()
	if name == "" && root != "." {
		name = root
	}
	type dirTime struct {
		name  string
		mtime time.Time
	}
	var dirTimes []dirTime
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		rel, ok := rebase(hdr.Name, root, name)
		if !ok {
			return fmt.Errorf("archive entry %q is outside the copied path %q", hdr.Name, root)
		}
		if err := writeEntry(rt, rel, hdr, tr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir {
			dirTimes = append(dirTimes, dirTime{rel, hdr.ModTime})
		}
	}
	// Directory times last: writing their entries changed them.
	for i := len(dirTimes) - 1; i >= 0; i-- {
		_ = rt.Chtimes(dirTimes[i].name, dirTimes[i].mtime, dirTimes[i].mtime)
	}
	return nil
}

// rebase maps an entry under root to its place under name, relative to
// the extraction directory; "." is the directory itself.
func rebase(entry, root, name string) (string, bool) {
	clean := path.Clean("/" + entry)[1:]
	var rel string
	switch {
	case root == ".":
		rel = clean
	case clean == root:
		rel = ""
	case strings.HasPrefix(clean, root+"/"):
		rel = clean[len(root)+1:]
	default:
		return "", false
	}
	out := path.Join(name, rel)
	if out == "" {
		out = "."
	}
	return out, true
}

func writeEntry(rt *os.Root, rel string, hdr *tar.Header, r io.Reader) error {
	mode := fs.FileMode(hdr.Mode).Perm() | fs.FileMode(hdr.Mode)&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	existing, statErr := rt.Lstat(rel)
	if statErr != nil {
		existing = nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return extractDir(rt, rel, mode, existing)
	case tar.TypeReg:
		return extractFile(rt, rel, mode, hdr.ModTime, existing, r)
	case tar.TypeSymlink, tar.TypeLink:
		if existing != nil && existing.IsDir() {
			return fmt.Errorf("cannot overwrite directory %q with non-directory", rel)
		}
		if existing != nil {
			if err := rt.Remove(rel); err != nil {
				return err
			}
		}
		if hdr.Typeflag == tar.TypeLink {
			return rt.Link(path.Clean(hdr.Linkname), rel)
		}
		return rt.Symlink(hdr.Linkname, rel)
	}
	// Devices, fifos and the like are not recreated by an unprivileged
	// copy; docker skips them too.
	return nil
}

func extractDir(rt *os.Root, rel string, mode fs.FileMode, existing fs.FileInfo) error {
	if existing != nil && !existing.IsDir() {
		return fmt.Errorf("cannot overwrite non-directory %q with directory", rel)
	}
	if existing == nil {
		if err := rt.Mkdir(rel, 0o700); err != nil {
			return err
		}
	}
	return rt.Chmod(rel, mode)
}

func extractFile(rt *os.Root, rel string, mode fs.FileMode, mtime time.Time, existing fs.FileInfo, r io.Reader) error {
	if existing != nil && existing.IsDir() {
		return fmt.Errorf("cannot overwrite directory %q with non-directory", rel)
	}
	if existing != nil && existing.Mode()&fs.ModeSymlink != 0 {
		// Replace the link itself rather than write through it.
		if err := rt.Remove(rel); err != nil {
			return err
		}
	}
	f, err := rt.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := rt.Chmod(rel, mode); err != nil {
		return err
	}
	return rt.Chtimes(rel, mtime, mtime)
}

// tarLocal streams src as a tar whose root entry is named name ("" puts a
// directory's contents at the top). Only the top-level link is followed
// with follow, as with cp -L.
func tarLocal(src, name string, follow bool) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := addLocal(tw, src, name, follow)
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func addLocal(tw *tar.Writer, src, name string, follow bool) error {
	fi, err := statLocal(src, follow)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return addFile(tw, src, name, fi)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		entry := path.Join(name, filepath.ToSlash(rel))
		if entry == "." || entry == "" {
			if name == "" {
				return nil // the contents only
			}
			entry = name
		}
		info := fi
		if p != src {
			if info, err = d.Info(); err != nil {
				return err
			}
		}
		return addFile(tw, p, entry, info)
	})
}

func addFile(tw *tar.Writer, p, entry string, fi fs.FileInfo) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = entry
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Format = tar.FormatPAX
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

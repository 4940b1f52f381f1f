package apitest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
)

// fakeFile is one entry of a fake container filesystem.
type fakeFile struct {
	mode  fs.FileMode // type bits and permissions
	data  []byte
	link  string
	mtime time.Time
}

// fakeFS is a container's root filesystem in memory: a small busybox-like
// tree plus whatever cp put there, with the changes diff reports.
type fakeFS struct {
	mu      sync.Mutex
	files   map[string]*fakeFile // by clean absolute path
	changes map[string]container.ChangeType
}

func newFakeFS(now time.Time, hostname string) *fakeFS {
	f := &fakeFS{files: map[string]*fakeFile{}, changes: map[string]container.ChangeType{}}
	for _, d := range []string{"/", "/bin", "/etc", "/root", "/tmp", "/var"} {
		f.files[d] = &fakeFile{mode: fs.ModeDir | 0o755, mtime: now}
	}
	f.files["/tmp"].mode = fs.ModeDir | fs.ModeSticky | 0o777
	f.files["/bin/busybox"] = &fakeFile{mode: 0o755, data: []byte("\x7fELF busybox"), mtime: now}
	f.files["/bin/sh"] = &fakeFile{mode: fs.ModeSymlink | 0o777, link: "busybox", mtime: now}
	f.files["/etc/hostname"] = &fakeFile{mode: 0o644, data: []byte(hostname + "\n"), mtime: now}
	f.files["/etc/passwd"] = &fakeFile{mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\n"), mtime: now}
	return f
}

func (f *fakeFS) hostname() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.TrimSpace(string(f.files["/etc/hostname"].data))
}

// changedSize is the writable layer's size: the bytes of changed files.
func (f *fakeFS) changedSize() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for p, kind := range f.changes {
		if kind != container.ChangeDelete {
			if file := f.files[p]; file != nil && file.mode.IsRegular() {
				n += int64(len(file.data))
			}
		}
	}
	return n
}

func (f *fakeFS) diff() []container.FilesystemChange {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []container.FilesystemChange{}
	for p, kind := range f.changes {
		out = append(out, container.FilesystemChange{Path: p, Kind: kind})
	}
	slices.SortFunc(out, func(a, b container.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func notInContainer(p, id string) error {
	return errdefs.Errorf(errdefs.ErrNotFound, "Could not find the file %s in container %s", p, id)
}

func (f *fakeFS) stat(p, name string) (container.PathStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[path.Clean("/"+p)]
	if !ok {
		return container.PathStat{}, notInContainer(p, name)
	}
	if strings.HasSuffix(p, "/") && !file.mode.IsDir() {
		return container.PathStat{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "lstat %s: not a directory", p)
	}
	return container.PathStat{Name: basename(p), Size: int64(len(file.data)), Mode: file.mode, Mtime: file.mtime, LinkTarget: file.link}, nil
}

// archive tars p and, for a directory, everything below it, named from
// p's base name ("." when p ends in "/.", as the client expects for
// copying a directory's contents).
func (f *fakeFS) archive(p, name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	root := path.Clean("/" + p)
	if _, ok := f.files[root]; !ok {
		return nil, notInContainer(p, name)
	}
	rebase := path.Base(root)
	if strings.HasSuffix(p, "/.") {
		rebase = "."
	}
	if root == "/" {
		rebase = "."
	}
	return f.tar(root, rebase)
}

// tar writes the subtree at root in path order, entries renamed from root
// to rebase ("" drops the prefix, as export does); f.mu is held.
func (f *fakeFS) tar(root, rebase string) ([]byte, error) {
	var paths []string
	for p := range f.files {
		if p == root || root == "/" || strings.HasPrefix(p, root+"/") {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		file := f.files[p]
		name := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		switch {
		case rebase != "" && name == "":
			name = rebase
		case rebase != "":
			// Not path.Join: a "." root must stay "./x", as the client
			// maps that prefix.
			name = rebase + "/" + name
		case name == "":
			continue
		}
		hdr := &tar.Header{Name: name, Mode: int64(file.mode.Perm()), ModTime: file.mtime, Size: int64(len(file.data)), Typeflag: tar.TypeReg}
		switch {
		case file.mode.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Size = tar.TypeDir, name+"/", 0
		case file.mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, file.link, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(file.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// extract unpacks a tar under the directory dir.
func (f *fakeFS) extract(dir, name string, r io.Reader, noOverwriteDirNonDir bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	root := path.Clean("/" + dir)
	d, ok := f.files[root]
	switch {
	case !ok:
		return notInContainer(dir, name)
	case !d.mode.IsDir():
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "extraction point is not a directory")
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract to %s: %w: %w", dir, err, errdefs.ErrInvalidArgument)
		}
		if err := f.add(path.Join(root, hdr.Name), hdr, tr, noOverwriteDirNonDir); err != nil {
			return err
		}
	}
}

// add writes one tar entry at p; f.mu is held.
func (f *fakeFS) add(p string, hdr *tar.Header, r io.Reader, noOverwriteDirNonDir bool) error {
	file := &fakeFile{mode: fs.FileMode(hdr.Mode).Perm(), mtime: hdr.ModTime, link: hdr.Linkname}
	switch hdr.Typeflag {
	case tar.TypeDir:
		file.mode |= fs.ModeDir
	case tar.TypeSymlink:
		file.mode |= fs.ModeSymlink
	case tar.TypeReg:
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		file.data = data
	default:
		return nil
	}
	old, exists := f.files[p]
	if exists && noOverwriteDirNonDir && old.mode.IsDir() != file.mode.IsDir() {
		if old.mode.IsDir() {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cannot overwrite directory %q with non-directory %q", p, hdr.Name)
		}
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "cannot overwrite non-directory %q with directory %q", p, hdr.Name)
	}
	if exists && old.mode.IsDir() && file.mode.IsDir() {
		old.mode, old.mtime = file.mode, file.mtime
		return nil
	}
	f.files[p] = file
	kind := container.ChangeAdd
	if exists && f.changes[p] != container.ChangeAdd {
		kind = container.ChangeModify
	}
	f.changes[p] = kind
	for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
		if _, seen := f.changes[dir]; !seen {
			f.changes[dir] = container.ChangeModify
		}
	}
	return nil
}

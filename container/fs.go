package container

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"berth/archive"
	"berth/errdefs"
	"berth/mount"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
)

func randomKey(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// withLayer calls fn with the parent layers' tree mounted read-only (""
// for a container on scratch), the directory holding the writable layer's
// changes, and how whiteouts are written there.
func (s *Service) withLayer(ctx context.Context, rec *Record, fn func(lower, upper string, mode archive.WhiteoutMode) error) error {
	mounts, err := s.opts.Snapshotter.Mounts(ctx, rec.Snapshot)
	if err != nil {
		return err
	}
	withUpper := func(lower string) error {
		if o, ok := mount.OverlayOf(mounts); ok && o.Upper != "" {
			return fn(lower, o.Upper, archive.WhiteoutOverlay)
		}
		if dir, _, ok := mount.BindOf(mounts); ok {
			return fn(lower, dir, archive.WhiteoutDelete)
		}
		return mount.WithTempMount(ctx, mounts, func(root string) error { return fn(lower, root, archive.WhiteoutDelete) })
	}
	if rec.Parent == "" {
		return withUpper("")
	}
	key := randomKey("view-")
	view, err := s.opts.Snapshotter.View(ctx, key, rec.Parent)
	if err != nil {
		return err
	}
	defer s.opts.Snapshotter.Remove(context.WithoutCancel(ctx), key)
	return mount.WithTempMount(ctx, view, withUpper)
}

// ContainerChanges is `diff`: what the writable layer added, changed and
// deleted.
func (s *Service) ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	e, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	rec := e.rec
	e.mu.Unlock()
	var out []container.FilesystemChange
	err = s.withLayer(ctx, &rec, func(lower, upper string, mode archive.WhiteoutMode) error {
		changes, err := archive.Changes(ctx, lower, upper, mode)
		for _, c := range changes {
			out = append(out, container.FilesystemChange{Path: c.Path, Kind: container.ChangeType(c.Kind)})
		}
		return err
	})
	if out == nil {
		out = []container.FilesystemChange{}
	}
	return out, err
}

// withRootfs calls fn with the container's merged root filesystem: the
// live mount of a running container, or a temporary one.
func (s *Service) withRootfs(ctx context.Context, name string, fn func(root string) error) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	rec := e.rec
	running := rec.State.IsRunning()
	e.mu.Unlock()
	if running {
		return fn(s.rootfs(rec.ID))
	}
	mounts, err := s.opts.Snapshotter.Mounts(ctx, rec.Snapshot)
	if err != nil {
		return err
	}
	return mount.WithTempMount(ctx, mounts, fn)
}

// ContainerExport is `export`: the merged filesystem as a tar.
func (s *Service) ContainerExport(ctx context.Context, name string, w io.Writer) error {
	return s.withRootfs(ctx, name, func(root string) error { return archive.Tar(ctx, w, root) })
}

// resolveIn resolves p inside root, following symlinks in the parent path
// but not in the last element, as `docker cp` does.
func resolveIn(root, p string) (string, error) {
	clean := path.Clean("/" + p)
	if clean == "/" {
		return root, nil
	}
	parent, err := securejoin.SecureJoin(root, path.Dir(clean))
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, path.Base(clean)), nil
}

func pathStat(full, name string) (container.PathStat, error) {
	fi, err := os.Lstat(full)
	if err != nil {
		if os.IsNotExist(err) {
			return container.PathStat{}, errdefs.Errorf(errdefs.ErrNotFound, "Could not find the file %s in container", name)
		}
		return container.PathStat{}, err
	}
	st := container.PathStat{Name: filepath.Base(full), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&os.ModeSymlink != 0 {
		st.LinkTarget, _ = os.Readlink(full)
	}
	return st, nil
}

// ContainerStatPath is HEAD /containers/{id}/archive.
func (s *Service) ContainerStatPath(ctx context.Context, name, p string) (container.PathStat, error) {
	var st container.PathStat
	err := s.withVolumes(ctx, name, func(root string) error {
		full, err := resolveIn(root, p)
		if err != nil {
			return err
		}
		st, err = pathStat(full, p)
		return err
	})
	return st, err
}

// ContainerArchivePath is `cp CONTAINER:path -`: a tar whose entries are
// rooted at the path's base name.
func (s *Service) ContainerArchivePath(ctx context.Context, name, p string) (io.ReadCloser, container.PathStat, error) {
	if _, err := s.ContainerStatPath(ctx, name, p); err != nil {
		return nil, container.PathStat{}, err
	}
	pr, pw := io.Pipe()
	stc := make(chan container.PathStat, 1)
	go func() {
		sent := false
		err := s.withVolumes(ctx, name, func(root string) error {
			full, err := resolveIn(root, p)
			if err != nil {
				return err
			}
			st, err := pathStat(full, p)
			stc <- st
			sent = true
			if err != nil {
				return err
			}
			return tarPath(ctx, pw, full, st.Name)
		})
		if !sent {
			stc <- container.PathStat{}
		}
		pw.CloseWithError(err)
	}()
	return pr, <-stc, nil
}

// tarPath writes full as a tar with entries named under base.
func tarPath(ctx context.Context, w io.Writer, full, base string) error {
	fi, err := os.Lstat(full)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if !fi.IsDir() {
		if err := writeEntry(tw, full, base, fi); err != nil {
			return err
		}
		return tw.Close()
	}
	// Re-root archive.Tar's deterministic stream under base/.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Tar(ctx, pw, full)) }()
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			pr.CloseWithError(err)
			return err
		}
		h.Name = path.Join(base, h.Name)
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join(base, h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			pr.CloseWithError(err)
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			pr.CloseWithError(err)
			return err
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, full, name string, fi os.FileInfo) error {
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		link, _ = os.Readlink(full)
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name, h.Uname, h.Gname = name, "", ""
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// ContainerExtractToDir is `cp - CONTAINER:dir`: a tar unpacked into a
// directory of the container, confined to its root filesystem.
func (s *Service) ContainerExtractToDir(ctx context.Context, name, p string, opts CopyToOptions, content io.Reader) error {
	return s.withVolumes(ctx, name, func(root string) error {
		dir, err := securejoin.SecureJoin(root, p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return errdefs.Errorf(errdefs.ErrNotFound, "Could not find the file %s in container %s", p, name)
		}
		if !fi.IsDir() {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "extraction point is not a directory")
		}
		_, err = archive.Apply(ctx, dir, content, archive.ApplyOptions{Mode: archive.WhiteoutDelete})
		if err != nil {
			return fmt.Errorf("copy to container %s: %w", name, err)
		}
		return nil
	})
}

// Package fs is the filesystem backend of registry/storage. Each storage path
// maps to the same relative path under the root directory:
//
//	<root>/
//	  <dir>/<dir>/<object>          committed objects, plain files
//	  <dir>/.tmp-<random>           a new object or Put being written; renamed
//	                                over <object> on commit, never listed
//
// New objects and Put are written to a temporary file in the target's
// directory, fsynced, renamed into place and the directory fsynced, so a crash
// leaves the old object or the new one. Appending writers write in place and
// truncate back to the committed size on Cancel. Deleting the last object of
// a directory removes the empty directories above it, so a prefix exists only
// while it holds objects, as in an object store.
//
// Files are created 0600 and directories 0700: the store holds the
// registry's account hashes and token signing key beside the images, and
// nothing but the registry reads it.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"berth/errdefs"
	"berth/registry/storage"
)

const tmpPrefix = ".tmp-"

// Driver stores objects as files under a root directory.
type Driver struct {
	root string
}

// New returns a driver rooted at dir, creating it if needed.
func New(dir string) (*Driver, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage root %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("storage root %s: %w", dir, err)
	}
	return &Driver{root: abs}, nil
}

var (
	_ storage.Driver  = (*Driver)(nil)
	_ storage.Creator = (*Driver)(nil)
)

func (d *Driver) full(p string) (string, error) {
	if err := storage.ValidPath(p); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(p)), nil
}

func wrap(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage path %s: %w", p, errdefs.ErrNotFound)
	}
	return fmt.Errorf("storage path %s: %w", p, err)
}

// Stat describes the file or directory at p.
func (d *Driver) Stat(ctx context.Context, p string) (storage.Info, error) {
	full, err := d.full(p)
	if err != nil {
		return storage.Info{}, err
	}
	fi, err := os.Stat(full)
	if err != nil {
		return storage.Info{}, wrap(p, err)
	}
	info := storage.Info{Path: p, ModTime: fi.ModTime(), IsDir: fi.IsDir()}
	if !fi.IsDir() {
		info.Size = fi.Size()
	}
	return info, nil
}

// Reader opens the file at p positioned at offset.
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	full, err := d.full(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, wrap(p, err)
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		if err == nil {
			err = fs.ErrNotExist
		}
		return nil, wrap(p, err)
	}
	if offset < 0 || offset > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("storage path %s: offset %d beyond size %d: %w", p, offset, fi.Size(), errdefs.ErrInvalidArgument)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, wrap(p, err)
	}
	return f, nil
}

// Get reads the whole file at p.
func (d *Driver) Get(ctx context.Context, p string) ([]byte, error) {
	full, err := d.full(p)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(full)
	if err != nil {
		if errors.Is(err, syscall.EISDIR) {
			return nil, wrap(p, fs.ErrNotExist)
		}
		return nil, wrap(p, err)
	}
	return b, nil
}

// Put replaces the file at p atomically and durably. A concurrent Delete of
// a prefix above p may remove the temporary file before it is renamed into
// place; the write is then done again, as an object store would order the
// Put after the Delete.
func (d *Driver) Put(ctx context.Context, p string, content []byte) error {
	var err error
	for range 5 {
		if err = d.put(ctx, p, content); !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return err
}

// Create writes the file at p unless it exists: the content goes to a
// temporary file, fsynced, then hard-linked into place, which fails when
// the name is taken.
func (d *Driver) Create(ctx context.Context, p string, content []byte) error {
	full, err := d.full(p)
	if err != nil {
		return err
	}
	f, err := createIn(filepath.Dir(full))
	if err != nil {
		return wrap(p, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrap(p, err)
	}
	if err := os.Link(f.Name(), full); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("storage path %s: %w", p, errdefs.ErrAlreadyExists)
	} else if err != nil {
		return wrap(p, err)
	}
	return syncDir(filepath.Dir(full))
}

func (d *Driver) put(ctx context.Context, p string, content []byte) error {
	w, err := d.Writer(ctx, p, false)
	if err != nil {
		return err
	}
	if _, err = w.Write(content); err != nil {
		return errors.Join(err, w.Cancel(ctx))
	}
	return w.Commit(ctx)
}

// List returns the sorted names in the directory p, without temporaries.
func (d *Driver) List(ctx context.Context, p string) ([]string, error) {
	full, err := d.full(p)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(full)
	if err != nil {
		return nil, wrap(p, err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Delete removes p recursively and prunes the directories it leaves empty.
func (d *Driver) Delete(ctx context.Context, p string) error {
	full, err := d.full(p)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(full); err != nil {
		return wrap(p, err)
	}
	// A writer creating an object under the prefix meanwhile makes a
	// directory non-empty again; as in an object store, its object may
	// survive, but what was there is removed.
	for i := 0; ; i++ {
		err := os.RemoveAll(full)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ENOTEMPTY) || i == 4 {
			return wrap(p, err)
		}
	}
	d.prune(filepath.Dir(full))
	return nil
}

// prune removes empty directories from dir up to the root. A failing rmdir
// means the directory is not empty (or someone just wrote into it), which is
// where pruning must stop anyway.
func (d *Driver) prune(dir string) {
	for dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

func tmpName(dir string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return filepath.Join(dir, tmpPrefix+hex.EncodeToString(b[:])), nil
}

// createIn makes dir and a temporary file in it; it retries once because a
// concurrent Delete may prune the directory between MkdirAll and create.
func createIn(dir string) (*os.File, error) {
	var err error
	for range 2 {
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		var name string
		if name, err = tmpName(dir); err != nil {
			return nil, err
		}
		var f *os.File
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

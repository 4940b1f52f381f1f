package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"berth/mount"
)

// Dirs manages a snapshotter's directories under its root:
//
//	<root>/snapshots/<id>/   published snapshots, one per metadata record
//	<root>/staging/<tmp>/    a snapshot being built; renamed into snapshots/
//	<root>/trash/<id>/       a removed snapshot being deleted
//
// A snapshot appears in snapshots/ by one rename of a complete directory and
// leaves it by one rename into trash/, so a crash never leaves a half-built
// or half-deleted tree under snapshots/.
type Dirs struct {
	root string
}

// NewDirs creates the directory skeleton under root.
func NewDirs(root string) (*Dirs, error) {
	d := &Dirs{root: root}
	for _, sub := range []string{"snapshots", "staging", "trash"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			return nil, fmt.Errorf("snapshot root: %w", err)
		}
	}
	return d, nil
}

// NewID returns a fresh random snapshot id: 16 hex digits, short enough to
// keep overlay option strings small.
func NewID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("snapshot id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Path is the directory of snapshot id.
func (d *Dirs) Path(id string) string {
	return filepath.Join(d.root, "snapshots", id)
}

// Stage creates an empty directory in which to build a snapshot.
func (d *Dirs) Stage() (string, error) {
	dir, err := os.MkdirTemp(filepath.Join(d.root, "staging"), "new-")
	if err != nil {
		return "", fmt.Errorf("stage snapshot: %w", err)
	}
	return dir, nil
}

// Publish moves a staged directory to snapshots/<id> and makes the rename
// durable before the caller writes the metadata record.
func (d *Dirs) Publish(staged, id string) error {
	if err := os.Rename(staged, d.Path(id)); err != nil {
		return fmt.Errorf("publish snapshot %s: %w", id, err)
	}
	return syncDir(filepath.Join(d.root, "snapshots"))
}

// DiscardStaged deletes a staged directory that will not be published.
func (d *Dirs) DiscardStaged(staged string) error {
	if err := os.RemoveAll(staged); err != nil {
		return fmt.Errorf("discard staged snapshot: %w", err)
	}
	return nil
}

// Discard deletes snapshots/<id>: first a rename into trash/, so that a
// crash in the middle of a long deletion leaves nothing under snapshots/.
func (d *Dirs) Discard(id string) error {
	trash, err := os.MkdirTemp(filepath.Join(d.root, "trash"), id+"-")
	if err != nil {
		return fmt.Errorf("discard snapshot %s: %w", id, err)
	}
	dst := filepath.Join(trash, "fs")
	if err := os.Rename(d.Path(id), dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return os.Remove(trash)
		}
		return fmt.Errorf("discard snapshot %s: %w", id, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("discard snapshot %s: %w", id, err)
	}
	return nil
}

// Cleanup removes what a crash may have left: staged and trashed
// directories, and published directories that no record names (the crash
// came between the rename and the metadata write). known maps recorded ids.
// Call it at startup, before the snapshotter serves requests.
func (d *Dirs) Cleanup(ctx context.Context, known map[string]string) error {
	var errs []error
	for _, sub := range []string{"staging", "trash"} {
		// A crash while a driver's probe mount stood in staging leaves it
		// mounted; RemoveAll would then delete through it and fail on it.
		if err := mount.UnmountAll(filepath.Join(d.root, sub)); err != nil {
			return fmt.Errorf("clean %s: %w", sub, err)
		}
		entries, err := os.ReadDir(filepath.Join(d.root, sub))
		if err != nil {
			return fmt.Errorf("clean %s: %w", sub, err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			errs = append(errs, os.RemoveAll(filepath.Join(d.root, sub, e.Name())))
		}
	}
	entries, err := os.ReadDir(filepath.Join(d.root, "snapshots"))
	if err != nil {
		return fmt.Errorf("clean snapshots: %w", err)
	}
	for _, e := range entries {
		if _, ok := known[e.Name()]; ok || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		errs = append(errs, d.Discard(e.Name()))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean snapshot root: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// Sync makes everything written under snapshots/<id> durable, by syncing
// its whole filesystem: one syncfs is far cheaper than an fsync per file of
// an unpacked layer. Drivers call it before recording a Commit, so that a
// Committed record never outlives its data across a power loss.
func (d *Dirs) Sync(id string) error {
	f, err := os.Open(d.Path(id))
	if err != nil {
		return fmt.Errorf("sync snapshot %s: %w", id, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync snapshot %s: %w", id, err)
	}
	return nil
}

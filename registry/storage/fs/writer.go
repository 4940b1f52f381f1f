package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"berth/errdefs"
	"berth/registry/storage"
)

// writer writes either a temporary file renamed over the target on Commit
// (new objects) or the target itself (appends).
type writer struct {
	path   string // storage path, for messages
	target string
	f      *os.File
	base   int64 // committed size when the writer opened
	size   int64
	append bool
	done   bool
}

// Writer opens a writer for p; see storage.Driver.
func (d *Driver) Writer(ctx context.Context, p string, appendTo bool) (storage.FileWriter, error) {
	full, err := d.full(p)
	if err != nil {
		return nil, err
	}
	w := &writer{path: p, target: full, append: appendTo}
	if appendTo {
		f, err := os.OpenFile(full, os.O_WRONLY, 0)
		if err != nil {
			return nil, wrap(p, err)
		}
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, wrap(p, err)
		}
		w.f, w.base, w.size = f, end, end
		return w, nil
	}
	f, err := createIn(filepath.Dir(full))
	if err != nil {
		return nil, wrap(p, err)
	}
	w.f = f
	return w, nil
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("storage path %s: writer closed: %w", w.path, errdefs.ErrFailedPrecondition)
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return n, wrap(w.path, err)
	}
	return n, nil
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("storage path %s: writer closed: %w", w.path, errdefs.ErrFailedPrecondition)
	}
	w.done = true
	if err := w.f.Sync(); err != nil {
		return errors.Join(wrap(w.path, err), w.abort())
	}
	if err := w.f.Close(); err != nil {
		return errors.Join(wrap(w.path, err), w.abort())
	}
	if w.append {
		return nil
	}
	if err := os.Rename(w.f.Name(), w.target); err != nil {
		return errors.Join(wrap(w.path, err), os.Remove(w.f.Name()))
	}
	return syncDir(filepath.Dir(w.target))
}

func (w *writer) Cancel(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	return w.abort()
}

func (w *writer) abort() error {
	if w.append {
		err := w.f.Truncate(w.base)
		return errors.Join(err, closeQuiet(w.f))
	}
	return errors.Join(closeQuiet(w.f), os.Remove(w.f.Name()))
}

// closeQuiet closes f, ignoring "already closed" because abort runs after a
// failed Close too.
func closeQuiet(f *os.File) error {
	if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"berth/errdefs"

	"github.com/opencontainers/go-digest"
)

// Writer appends to one ingest. Close keeps the partial data so that a later
// Writer with the same ref resumes at Offset; Commit makes it a blob.
type Writer struct {
	s        *Store
	ref      string
	dir      string
	f        *os.File
	digester digest.Digester
	offset   int64
	closed   bool
}

// Writer opens the ingest ref, resuming it when it already holds data. Only
// one Writer per ref may be open; a second gets errdefs.ErrUnavailable.
func (s *Store) Writer(ctx context.Context, ref string) (*Writer, error) {
	if ref == "" {
		return nil, fmt.Errorf("ingest: empty ref: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	if s.active[ref] {
		s.mu.Unlock()
		return nil, fmt.Errorf("ingest %q: already being written: %w", ref, errdefs.ErrUnavailable)
	}
	s.active[ref] = true
	s.mu.Unlock()

	w, err := s.openWriter(ctx, ref)
	if err != nil {
		s.release(ref)
		return nil, err
	}
	return w, nil
}

func (s *Store) release(ref string) {
	s.mu.Lock()
	delete(s.active, ref)
	s.mu.Unlock()
}

func (s *Store) openWriter(ctx context.Context, ref string) (*Writer, error) {
	dir := s.ingestDir(ref)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ref"), []byte(ref), 0o600); err != nil {
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	w := &Writer{s: s, ref: ref, dir: dir, f: f, digester: digest.SHA256.Digester()}
	// Resume: the hash state is not persisted, so the bytes already on disk
	// are hashed again. That costs a local read, far cheaper than refetching.
	n, err := io.Copy(w.digester.Hash(), readerCtx{ctx, f})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ingest %q: resume: %w", ref, err)
	}
	w.offset = n
	return w, nil
}

// Offset is the number of bytes written so far, including resumed ones.
func (w *Writer) Offset() int64 { return w.offset }

// Digest is the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return w.digester.Digest() }

func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.offset += int64(n)
	return n, err
}

// Truncate discards data past size, for a resumption whose source cannot
// continue at Offset (size 0 restarts the ingest).
func (w *Writer) Truncate(ctx context.Context, size int64) error {
	if size > w.offset {
		return fmt.Errorf("ingest %q: truncate to %d past offset %d: %w", w.ref, size, w.offset, errdefs.ErrInvalidArgument)
	}
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	w.digester = digest.SHA256.Digester()
	n, err := io.Copy(w.digester.Hash(), io.LimitReader(readerCtx{ctx, w.f}, size))
	if err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	w.offset = n
	return nil
}

// Commit checks the data against size (unless negative) and expected (unless
// empty), then publishes it as a blob and removes the ingest. Committing a
// blob that already exists succeeds and returns errdefs.ErrAlreadyExists
// wrapped, so callers can tell without failing.
func (w *Writer) Commit(ctx context.Context, size int64, expected digest.Digest) error {
	if w.closed {
		return fmt.Errorf("ingest %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	defer w.finish()
	if size >= 0 && size != w.offset {
		return fmt.Errorf("ingest %q: got %d bytes, expected %d: %w", w.ref, w.offset, size, errdefs.ErrInvalidArgument)
	}
	got := w.digester.Digest()
	if expected != "" && expected != got {
		return fmt.Errorf("ingest %q: digest mismatch: got %s, expected %s: %w", w.ref, got, expected, errdefs.ErrInvalidArgument)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	w.closed = true
	target, err := w.s.blobPath(got)
	if err != nil {
		return err
	}
	if _, err := os.Stat(target); err == nil {
		os.RemoveAll(w.dir)
		return fmt.Errorf("content %s: %w", got, errdefs.ErrAlreadyExists)
	}
	src := filepath.Join(w.dir, "data")
	if err := os.Chmod(src, 0o444); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	if err := os.Rename(src, target); err != nil {
		return fmt.Errorf("ingest %q: publish: %w", w.ref, err)
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return fmt.Errorf("content %s: %w", got, err)
	}
	return os.RemoveAll(w.dir)
}

// Close releases the writer and keeps the partial data for resumption.
func (w *Writer) Close() error {
	if w.closed {
		w.finish()
		return nil
	}
	defer w.finish()
	w.closed = true
	return w.f.Close()
}

func (w *Writer) finish() {
	if !w.closed {
		w.f.Close()
		w.closed = true
	}
	w.s.release(w.ref)
}

// WriteBlob copies r into the store as one blob, verifying size (unless
// negative) and digest (unless empty). A blob that already exists is not an
// error. On failure nothing is left behind.
func (s *Store) WriteBlob(ctx context.Context, ref string, r io.Reader, size int64, expected digest.Digest) (digest.Digest, int64, error) {
	w, err := s.Writer(ctx, ref)
	if err != nil {
		return "", 0, err
	}
	if err := w.Truncate(ctx, 0); err != nil {
		w.Close()
		return "", 0, err
	}
	if _, err := io.Copy(w, readerCtx{ctx, r}); err != nil {
		w.Close()
		s.Abort(ctx, ref)
		return "", 0, fmt.Errorf("ingest %q: %w", ref, err)
	}
	d, n := w.Digest(), w.Offset()
	if err := w.Commit(ctx, size, expected); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		s.Abort(ctx, ref)
		return "", 0, err
	}
	return d, n, nil
}

// readerCtx stops a copy when ctx is cancelled.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, fs.ErrInvalid) {
		return nil
	}
	return err
}

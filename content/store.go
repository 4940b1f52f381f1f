// Package content is berth's content-addressed blob store: layers, configs and
// manifests, each stored once under its digest.
//
// On disk (root is <data-root>/content):
//
//	blobs/sha256/<hex>      committed blobs, immutable, read-only files
//	ingest/<sha256(ref)>/   one resumable write in progress
//	    ref                 the caller's ref, for Status and listing
//	    data                the bytes received so far
//
// A blob becomes visible only when Writer.Commit has fsynced it, checked its
// size and digest, and renamed it into blobs/ (then fsynced the directory). A
// crash leaves either no blob or a whole one; partial ingests are resumed by
// opening a Writer with the same ref.
package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"berth/errdefs"

	"github.com/opencontainers/go-digest"
)

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// Status describes an ingest in progress.
type Status struct {
	Ref    string
	Offset int64
}

// Store is a content store rooted in one directory. Its methods are safe for
// concurrent use; one ref can have one open Writer at a time.
type Store struct {
	root string

	mu     sync.Mutex
	active map[string]bool // refs with an open Writer
}

// New opens (creating if needed) a store under root.
func New(root string) (*Store, error) {
	for _, d := range []string{"blobs/sha256", "ingest"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	return &Store{root: root, active: map[string]bool{}}, nil
}

func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %w: %v", d, errdefs.ErrInvalidArgument, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %q: %w: only sha256 is supported", d, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.root, "blobs", "sha256", d.Encoded()), nil
}

// Info returns the size and creation time of a committed blob.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
	} else if err != nil {
		return Info{}, fmt.Errorf("content %s: %w", d, err)
	}
	return Info{Digest: d, Size: st.Size(), CreatedAt: st.ModTime()}, nil
}

// Open returns a reader of a committed blob. The caller closes it.
func (s *Store) Open(ctx context.Context, d digest.Digest) (*os.File, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
	}
	return f, err
}

// ReadAll returns a small blob's bytes (configs, manifests), refusing blobs
// larger than limit.
func (s *Store) ReadAll(ctx context.Context, d digest.Digest, limit int64) ([]byte, error) {
	f, err := s.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("content %s: %w", d, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("content %s: larger than %d bytes: %w", d, limit, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// Delete removes a committed blob.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("content %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every committed blob.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue // a stray file, not a blob
		}
		st, err := e.Info()
		if err != nil {
			continue // removed while walking
		}
		if err := fn(Info{Digest: d, Size: st.Size(), CreatedAt: st.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) ingestDir(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(s.root, "ingest", hex.EncodeToString(sum[:]))
}

// Status reports how far the ingest of ref has come.
func (s *Store) Status(ctx context.Context, ref string) (Status, error) {
	st, err := os.Stat(filepath.Join(s.ingestDir(ref), "data"))
	if errors.Is(err, fs.ErrNotExist) {
		return Status{}, fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
	} else if err != nil {
		return Status{}, fmt.Errorf("ingest %q: %w", ref, err)
	}
	return Status{Ref: ref, Offset: st.Size()}, nil
}

// Abort discards the partial data of ref.
func (s *Store) Abort(ctx context.Context, ref string) error {
	s.mu.Lock()
	busy := s.active[ref]
	s.mu.Unlock()
	if busy {
		return fmt.Errorf("ingest %q: a writer is open: %w", ref, errdefs.ErrUnavailable)
	}
	return os.RemoveAll(s.ingestDir(ref))
}

// AbortStale removes ingests older than age that nobody is writing; the daemon
// calls it at start-up so abandoned partial downloads do not pile up.
func (s *Store) AbortStale(ctx context.Context, age time.Duration) error {
	dir := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	for _, e := range entries {
		st, err := os.Stat(filepath.Join(dir, e.Name(), "data"))
		if err == nil && time.Since(st.ModTime()) < age {
			continue
		}
		ref, _ := os.ReadFile(filepath.Join(dir, e.Name(), "ref"))
		s.mu.Lock()
		busy := s.active[string(ref)]
		s.mu.Unlock()
		if !busy {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

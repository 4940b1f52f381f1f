// Package storage declares the object-store-shaped Driver the registry keeps
// all of its state behind: blobs, upload sessions, repository links, tags and
// referrers. A Driver offers only what both a local filesystem and an object
// store such as S3 can do well: stat, ranged reads, append-only writers that
// become visible on Commit, small whole-object Get/Put, listing and recursive
// delete. There is deliberately no Move: an upload is finished by writing a
// small link object that names the data it uploaded, so every backend behaves
// alike and garbage collection can run while the registry serves.
//
// Paths are slash-separated, relative, and never contain "." or ".."
// components; ValidPath checks them. The registry's layout over these paths
// is drawn in registry/server's package comment.
package storage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"berth/errdefs"
)

// Info describes a stored object or a directory-like prefix.
type Info struct {
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// Driver is the storage backend. Every method returns an error of kind
// errdefs.ErrNotFound when the path does not exist. Implementations must be
// safe for concurrent use by several goroutines and several processes.
type Driver interface {
	// Stat describes the object or prefix at path.
	Stat(ctx context.Context, path string) (Info, error)
	// Reader streams the object at path from offset on. An offset equal to
	// the size yields an empty stream; beyond it is ErrInvalidArgument.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	// Writer opens a writer for path. With appendTo it continues after the
	// content of an existing object (which must exist); without it the
	// object starts empty and appears at path only once Commit returns.
	// Appended bytes may be visible before Commit (a filesystem appends in
	// place), so callers that need the committed length record it
	// themselves, as the registry's upload state does. Cancel discards
	// what this writer wrote, truncating an append back.
	Writer(ctx context.Context, path string, appendTo bool) (FileWriter, error)
	// Get reads a whole small object.
	Get(ctx context.Context, path string) ([]byte, error)
	// Put replaces the object at path atomically: readers see the old
	// content or the new, never a mix.
	Put(ctx context.Context, path string, content []byte) error
	// List returns the sorted names of the direct children of the prefix.
	List(ctx context.Context, path string) ([]string, error)
	// Delete removes the object or, recursively, the prefix at path.
	Delete(ctx context.Context, path string) error
}

// FileWriter is an open append-only writer. Exactly one of Commit or Cancel
// must be called; both release the writer.
type FileWriter interface {
	io.Writer
	// Size is the object's size including what this writer wrote.
	Size() int64
	Commit(ctx context.Context) error
	Cancel(ctx context.Context) error
}

// Redirector is implemented by drivers that can hand clients a URL to fetch
// an object from directly (an S3 pre-signed URL, a CDN). An empty URL with a
// nil error means "serve it yourself".
type Redirector interface {
	RedirectURL(r *http.Request, path string) (string, error)
}

// Creator is implemented by drivers that can create an object only if it
// does not exist yet, atomically across processes (O_EXCL-style link on a
// filesystem, If-None-Match on S3). Create returns an error of kind
// errdefs.ErrAlreadyExists when the object exists; exactly one of several
// concurrent Creates of a path succeeds.
type Creator interface {
	Create(ctx context.Context, path string, content []byte) error
}

// ValidPath reports an error of kind ErrInvalidArgument when p is not a
// clean relative slash-separated path.
func ValidPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("storage path %q: %w", p, errdefs.ErrInvalidArgument)
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("storage path %q: %w", p, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

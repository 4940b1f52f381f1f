package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
	"berth/registry/storage"
)

// store is the registry's layout over a storage.Driver (drawn in doc.go).
type store struct {
	d storage.Driver
}

// blobLink is the content of blobs/<alg>/<hex>/link: where the blob's bytes
// are. Finishing an upload writes it instead of moving the data.
type blobLink struct {
	Data string `json:"data"`
	Size int64  `json:"size"`
}

// revision is the content of a repository's manifest revision object.
type revision struct {
	MediaType string `json:"mediaType"`
	Subject   string `json:"subject,omitempty"`
}

// newID names an upload or a data object: 128 random bits in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // documented never to fail since Go 1.24
	return hex.EncodeToString(b[:])
}

func dgstPath(d digest.Digest) string { return d.Algorithm().String() + "/" + d.Encoded() }

func blobLinkPath(d digest.Digest) string { return "blobs/" + dgstPath(d) + "/link" }
func dataPath(id string) string           { return "data/" + id }
func uploadPath(id string) string         { return "uploads/" + id }
func repoPath(name string) string         { return "repositories/" + name }
func layerPath(name string, d digest.Digest) string {
	return repoPath(name) + "/_layers/" + dgstPath(d)
}
func revisionPath(name string, d digest.Digest) string {
	return repoPath(name) + "/_manifests/revisions/" + dgstPath(d)
}
func tagsPath(name string) string     { return repoPath(name) + "/_manifests/tags" }
func tagPath(name, tag string) string { return tagsPath(name) + "/" + tag }
func referrersPath(name string, subject digest.Digest) string {
	return repoPath(name) + "/_referrers/" + dgstPath(subject)
}

func (s *store) getJSON(ctx context.Context, p string, v any) error {
	b, err := s.d.Get(ctx, p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("storage object %s: %w", p, err)
	}
	return nil
}

func (s *store) putJSON(ctx context.Context, p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("storage object %s: %w", p, err)
	}
	return s.d.Put(ctx, p, b)
}

// blob resolves a blob's link, checking that its data is still there.
func (s *store) blob(ctx context.Context, d digest.Digest) (blobLink, error) {
	var l blobLink
	if err := s.getJSON(ctx, blobLinkPath(d), &l); err != nil {
		return l, err
	}
	if _, err := s.d.Stat(ctx, l.Data); err != nil {
		return l, err
	}
	return l, nil
}

// repoBlob resolves a blob the repository may read.
func (s *store) repoBlob(ctx context.Context, name string, d digest.Digest) (blobLink, error) {
	if _, err := s.d.Stat(ctx, layerPath(name, d)); err != nil {
		return blobLink{}, err
	}
	return s.blob(ctx, d)
}

// link records the blob whose bytes were written to data/<id>, unless a
// concurrent push already linked the same digest: both copies hold the same
// verified bytes, so either link is right. It reports whether data/<id> is
// the blob's data now; the caller deletes unused data once the blob is safe
// from garbage collection (see protect).
func (s *store) link(ctx context.Context, d digest.Digest, id string, size int64) (bool, error) {
	if _, err := s.blob(ctx, d); err == nil {
		return false, nil
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return false, err
	}
	return true, s.putJSON(ctx, blobLinkPath(d), blobLink{Data: dataPath(id), Size: size})
}

// putSmallBlob stores content (a manifest) as a blob.
func (s *store) putSmallBlob(ctx context.Context, d digest.Digest, content []byte) error {
	if _, err := s.blob(ctx, d); err == nil {
		return nil
	}
	id := newID()
	if err := s.d.Put(ctx, dataPath(id), content); err != nil {
		return err
	}
	used, err := s.link(ctx, d, id, int64(len(content)))
	if err == nil && !used {
		err = s.d.Delete(ctx, dataPath(id))
	}
	return err
}

func (s *store) readSmallBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	l, err := s.blob(ctx, d)
	if err != nil {
		return nil, err
	}
	return s.d.Get(ctx, l.Data)
}

func (s *store) linkLayer(ctx context.Context, name string, d digest.Digest) error {
	return s.d.Put(ctx, layerPath(name, d), nil)
}

// repoExists reports whether anything was ever pushed to the repository
// (and it was not deleted): it has _manifests, _layers or _referrers, not
// merely repositories nested under its name.
func (s *store) repoExists(ctx context.Context, name string) (bool, error) {
	names, err := s.listOrEmpty(ctx, repoPath(name))
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "_") {
			return true, nil
		}
	}
	return false, nil
}

// listOrEmpty lists a prefix, treating a missing prefix as empty.
func (s *store) listOrEmpty(ctx context.Context, p string) ([]string, error) {
	names, err := s.d.List(ctx, p)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	return names, err
}

// repositories walks repositories/ for every name holding _manifests or
// _layers. Name components never start with "_", so the markers cannot
// collide with a repository called that.
func (s *store) repositories(ctx context.Context) ([]string, error) {
	var out []string
	var walk func(prefix string) error
	walk = func(prefix string) error {
		names, err := s.listOrEmpty(ctx, "repositories"+prefix)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasPrefix(n, "_") {
				if prefix != "" && (len(out) == 0 || out[len(out)-1] != prefix[1:]) {
					out = append(out, prefix[1:])
				}
				continue
			}
			if err := walk(prefix + "/" + n); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	err := walk("")
	return out, err
}

// readAt opens a blob's data at offset.
func (s *store) readAt(ctx context.Context, l blobLink, off int64) (io.ReadCloser, error) {
	return s.d.Reader(ctx, path.Clean(l.Data), off)
}

// dropUpload deletes an upload session and its bytes.
func (s *store) dropUpload(ctx context.Context, id string) error {
	err := s.d.Delete(ctx, uploadPath(id))
	if err2 := s.d.Delete(ctx, dataPath(id)); err == nil {
		err = err2
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
)

// BlobExists reports whether ref's repository holds desc's blob (HEAD).
func (s *Session) BlobExists(ctx context.Context, ref reference.Named, desc ocispec.Descriptor) (bool, error) {
	resp, _, err := s.do(ctx, request{
		method: http.MethodHead, domain: reference.Domain(ref),
		path:   "/v2/" + reference.Path(ref) + "/blobs/" + desc.Digest.String(),
		scopes: []string{pushScope(ref)}, idempotent: true,
	})
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("blob %s: %w", desc.Digest, responseError(resp))
}

// MountBlob asks the registry to link desc's blob from fromRepo (a path in
// the same registry, e.g. "library/busybox") into ref's repository. It
// reports false when the registry declined (202) and the blob must be
// pushed; the upload session the registry opened then is cancelled.
func (s *Session) MountBlob(ctx context.Context, ref reference.Named, fromRepo string, desc ocispec.Descriptor) (bool, error) {
	resp, ep, err := s.do(ctx, request{
		method: http.MethodPost, domain: reference.Domain(ref),
		path:  "/v2/" + reference.Path(ref) + "/blobs/uploads/",
		query: url.Values{"mount": {desc.Digest.String()}, "from": {fromRepo}},
		body:  emptyBody, length: 0,
		scopes: []string{pushScope(ref), "repository:" + fromRepo + ":pull"},
	})
	if err != nil {
		return false, fmt.Errorf("mount blob %s from %s: %w", desc.Digest, fromRepo, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		if loc, err := location(resp); err == nil {
			s.cancelUpload(ctx, ref, ep, loc)
		}
		return false, nil
	}
	return false, fmt.Errorf("mount blob %s from %s: %w", desc.Digest, fromRepo, responseError(resp))
}

func emptyBody() (io.Reader, error) { return http.NoBody, nil }

// PushBlob uploads desc's content, read from r, to ref's repository: POST
// to open an upload, then one streamed PATCH (or PATCHes of
// Options.ChunkSize), then PUT ?digest= to commit. The bytes are hashed on
// the way; if they do not match desc the upload is cancelled and nothing is
// committed.
func (s *Session) PushBlob(ctx context.Context, ref reference.Named, desc ocispec.Descriptor, r io.Reader) error {
	if err := checkDescriptor("blob", desc); err != nil {
		return err
	}
	resp, ep, err := s.do(ctx, request{
		method: http.MethodPost, domain: reference.Domain(ref),
		path: "/v2/" + reference.Path(ref) + "/blobs/uploads/",
		body: emptyBody, length: 0, scopes: []string{pushScope(ref)},
	})
	if err != nil {
		return fmt.Errorf("push blob %s: %w", desc.Digest, err)
	}
	loc, err := acceptedLocation(resp)
	if err != nil {
		return fmt.Errorf("push blob %s: start upload: %w", desc.Digest, err)
	}
	chunk := s.c.opts.ChunkSize
	// The registry may demand bigger chunks than configured (all but the last).
	if m, err := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64); err == nil && chunk > 0 && m > chunk {
		chunk = m
	}
	h := desc.Digest.Algorithm().Hash()
	up := &upload{s: s, ref: ref, ep: ep, loc: loc}
	if err := up.send(ctx, io.TeeReader(io.LimitReader(r, desc.Size), h), desc.Size, chunk); err != nil {
		s.cancelUpload(ctx, ref, ep, up.loc)
		return fmt.Errorf("push blob %s: %w", desc.Digest, err)
	}
	if err := checkHash(desc, h, up.sent); err != nil {
		s.cancelUpload(ctx, ref, ep, up.loc)
		return fmt.Errorf("push blob: %w", err)
	}
	return up.commit(ctx, desc.Digest)
}

func checkHash(desc ocispec.Descriptor, h hash.Hash, n int64) error {
	if n != desc.Size {
		return fmt.Errorf("blob %s: read %d of %d bytes: %w", desc.Digest, n, desc.Size, io.ErrUnexpectedEOF)
	}
	if got := digest.NewDigest(desc.Digest.Algorithm(), h); got != desc.Digest {
		return fmt.Errorf("blob %s: content hashes to %s: %w", desc.Digest, got, errdefs.ErrInvalidArgument)
	}
	return nil
}

// upload is one open upload session.
type upload struct {
	s    *Session
	ref  reference.Named
	ep   endpoint
	loc  *url.URL
	sent int64
}

// send PATCHes size bytes of r, in chunks of chunk bytes when chunk > 0.
func (up *upload) send(ctx context.Context, r io.Reader, size, chunk int64) error {
	if size == 0 {
		return nil
	}
	if chunk <= 0 {
		chunk = size
	}
	for up.sent < size {
		n := min(chunk, size-up.sent)
		body := &countingReader{r: io.LimitReader(r, n)}
		hdr := http.Header{"Content-Type": {"application/octet-stream"}}
		if chunk < size {
			hdr.Set("Content-Range", strconv.FormatInt(up.sent, 10)+"-"+strconv.FormatInt(up.sent+n-1, 10))
		}
		once := false
		resp, err := up.s.doEndpoint(ctx, up.ep, request{
			method: http.MethodPatch, domain: reference.Domain(up.ref), abs: up.loc,
			header: hdr, length: n, scopes: []string{pushScope(up.ref)},
			body: func() (io.Reader, error) {
				if once {
					return nil, errNoReplay
				}
				once = true
				return body, nil
			},
		})
		if err != nil {
			if body.eof && body.n < n {
				err = fmt.Errorf("source ended at byte %d of %d: %w", up.sent+body.n, size, io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("upload at byte %d: %w", up.sent, err)
		}
		up.sent += body.n
		loc, err := acceptedLocation(resp)
		if err != nil {
			return fmt.Errorf("upload at byte %d: %w", up.sent, err)
		}
		up.loc = loc
		if body.n != n {
			return fmt.Errorf("upload: source ended at byte %d: %w", up.sent, io.ErrUnexpectedEOF)
		}
	}
	return nil
}

// commit finishes the upload with PUT ?digest=.
func (up *upload) commit(ctx context.Context, dgst digest.Digest) error {
	u := *up.loc
	q := u.Query()
	q.Set("digest", dgst.String())
	u.RawQuery = q.Encode()
	resp, err := up.s.doEndpoint(ctx, up.ep, request{
		method: http.MethodPut, domain: reference.Domain(up.ref), abs: &u,
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   emptyBody, length: 0, scopes: []string{pushScope(up.ref)},
	})
	if err != nil {
		return fmt.Errorf("push blob %s: commit: %w", dgst, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("push blob %s: commit: %w", dgst, responseError(resp))
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != dgst.String() {
		return fmt.Errorf("push blob %s: registry stored %s: %w", dgst, h, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (s *Session) cancelUpload(ctx context.Context, ref reference.Named, ep endpoint, loc *url.URL) {
	resp, err := s.doEndpoint(context.WithoutCancel(ctx), ep, request{
		method: http.MethodDelete, domain: reference.Domain(ref), abs: loc,
		scopes: []string{pushScope(ref)},
	})
	if err != nil {
		s.c.log.DebugContext(ctx, "cancel upload", "err", err)
		return
	}
	drain(resp)
}

// acceptedLocation checks for 202 Accepted and returns the absolute upload
// Location, closing the response.
func acceptedLocation(resp *http.Response) (*url.URL, error) {
	defer drain(resp)
	if resp.StatusCode != http.StatusAccepted {
		return nil, responseError(resp)
	}
	return location(resp)
}

// location resolves a response's Location against its request URL: the
// spec lets it be relative or absolute, and carry query state to keep.
func location(resp *http.Response) (*url.URL, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return nil, fmt.Errorf("upload response without Location: %w", errdefs.ErrInvalidArgument)
	}
	u, err := resp.Request.URL.Parse(l)
	if err != nil {
		return nil, fmt.Errorf("upload Location %q: %v: %w", l, err, errdefs.ErrInvalidArgument)
	}
	return u, nil
}

// countingReader counts what a request body yielded and whether its
// source ran dry, to tell a short source from a network failure.
type countingReader struct {
	r   io.Reader
	n   int64
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if errors.Is(err, io.EOF) {
		c.eof = true
	}
	return n, err
}

// PushManifest stores body, of mediaType, under ref's tag (or digest) and
// returns its digest, checked against what the registry reports.
func (s *Session) PushManifest(ctx context.Context, ref reference.Named, mediaType string, body []byte) (digest.Digest, error) {
	dgst := digest.FromBytes(body)
	if len(body) > MaxManifestSize {
		return "", fmt.Errorf("manifest %s: %d bytes, more than %d: %w", dgst, len(body), MaxManifestSize, errdefs.ErrInvalidArgument)
	}
	target := dgst.String()
	switch r := ref.(type) {
	case reference.Tagged:
		target = r.Tag()
	case reference.Digested:
		if r.Digest() != dgst {
			return "", fmt.Errorf("manifest %s: reference names digest %s: %w", dgst, r.Digest(), errdefs.ErrInvalidArgument)
		}
	}
	resp, _, err := s.do(ctx, request{
		method: http.MethodPut, domain: reference.Domain(ref),
		path:   "/v2/" + reference.Path(ref) + "/manifests/" + target,
		header: http.Header{"Content-Type": {mediaType}},
		body:   func() (io.Reader, error) { return bytes.NewReader(body), nil },
		length: int64(len(body)), scopes: []string{pushScope(ref)}, idempotent: true,
	})
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w", reference.FamiliarString(ref), err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("manifest %s: %w", reference.FamiliarString(ref), responseError(resp))
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != dgst.String() {
		return "", fmt.Errorf("manifest %s: registry stored %s, sent %s: %w", reference.FamiliarString(ref), h, dgst, errdefs.ErrInvalidArgument)
	}
	return dgst, nil
}

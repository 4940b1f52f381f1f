package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
)

// mirrorBlob serves a blob from the cache, or streams it from upstream to
// the client and into the cache at once. Concurrent requests for the same
// blob share one download: the others wait for it and read the cache.
func (s *Server) mirrorBlob(w http.ResponseWriter, r *http.Request, rt route, mt *mirrorTarget) error {
	ctx := r.Context()
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	if _, err := s.st.repoBlob(ctx, rt.name, d); err == nil {
		return s.getBlob(w, r, rt)
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	unknown := errf(http.StatusNotFound, codeBlobUnknown, "blob %s unknown upstream in %s", d, mt.upRepo)
	if r.Method == http.MethodHead {
		_, size, err := mt.m.Upstream.Blob(ctx, mt.upRepo, d, true)
		if err != nil {
			return upstreamError(err, unknown)
		}
		blobHeaders(w, d, size)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// A range of a blob not cached yet: cache it whole, then serve the range.
	// Only the request that runs the download streams it.
	client := &teeClient{}
	if r.Header.Get("Range") == "" {
		client.w = w
	}
	_, err, _ = s.flight.Do("b:"+rt.name+"@"+d.String(), func() (any, error) {
		return nil, s.cacheBlob(context.WithoutCancel(ctx), mt, rt.name, d, client)
	})
	switch {
	case client.started && err != nil:
		// The client has a short or bad body, which it detects.
		s.log.WarnContext(ctx, "mirrored blob failed mid-stream", "blob", d, "err", err)
		return nil
	case err != nil:
		return upstreamError(err, unknown)
	case client.started:
		return nil
	}
	return s.getBlob(w, r, rt)
}

// teeClient is the response a download streams to, if any; started is set
// once its status went out.
type teeClient struct {
	w       http.ResponseWriter
	started bool
}

func blobHeaders(w http.ResponseWriter, d digest.Digest, size int64) {
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Etag", `"`+d.String()+`"`)
}

// cacheBlob downloads blob d into the cache, teeing it to client when set.
// The client's going away does not stop the download, so the next request
// finds the blob cached. Nothing is linked unless size and digest match.
func (s *Server) cacheBlob(ctx context.Context, mt *mirrorTarget, name string, d digest.Digest, client *teeClient) error {
	g, err := s.st.startGuard(ctx)
	if err != nil {
		return err
	}
	if !d.Algorithm().Available() {
		return errf(http.StatusBadRequest, codeDigestInvalid, "digest algorithm %q not supported", d.Algorithm())
	}
	rc, size, err := mt.m.Upstream.Blob(ctx, mt.upRepo, d, false)
	if err != nil {
		return err
	}
	defer rc.Close()
	id := newID()
	fw, err := s.st.d.Writer(ctx, dataPath(id), false)
	if err != nil {
		return err
	}
	var out io.Writer
	if client.w != nil {
		blobHeaders(client.w, d, size)
		client.w.WriteHeader(http.StatusOK)
		client.started, out = true, client.w
	}
	vr := d.Verifier()
	n, err := copyTee(fw, vr, out, io.LimitReader(rc, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("upstream blob %s: %d bytes, announced %d: %w", d, n, size, errdefs.ErrUnavailable)
	}
	if err == nil && !vr.Verified() {
		err = fmt.Errorf("upstream blob %s: content does not match its digest: %w", d, errdefs.ErrUnavailable)
	}
	if err != nil {
		return errors.Join(err, fw.Cancel(ctx))
	}
	if err := fw.Commit(ctx); err != nil {
		return err
	}
	return s.linkUploaded(ctx, g, name, id, size, d)
}

// copyTee copies src to the cache writer and the verifier, and to the
// client while it keeps up; a client write error only drops the client.
func copyTee(cache, verify, client io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := cache.Write(buf[:k]); err != nil {
				return n, err
			}
			verify.Write(buf[:k])
			if client != nil {
				if _, err := client.Write(buf[:k]); err != nil {
					client = nil
				}
			}
			n += int64(k)
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("upstream read: %v: %w", rerr, errdefs.ErrUnavailable)
		}
	}
}

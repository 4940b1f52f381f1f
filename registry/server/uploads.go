package server

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
	"berth/registry/auth"
	"berth/registry/notify"
)

// uploadState is the stored session of an upload, enough for any registry
// process to take the next chunk: the committed length of data/<id> and the
// sha256 state over exactly those bytes.
type uploadState struct {
	Repo    string    `json:"repo"`
	Offset  int64     `json:"offset"`
	SHA256  []byte    `json:"sha256"`
	Started time.Time `json:"started"`
}

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

func writeUploadHeaders(w http.ResponseWriter, name, id string, offset int64) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, id))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Range", fmt.Sprintf("0-%d", max(0, offset-1)))
	h.Set("Content-Length", "0")
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// startUpload answers POST …/blobs/uploads/: a mount, a monolithic upload
// with ?digest=, or a new session.
func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	if rt.ref != "" {
		return errf(http.StatusMethodNotAllowed, codeUnsupported, "POST to an upload session")
	}
	ctx, q := r.Context(), r.URL.Query()
	if m := q.Get("mount"); m != "" {
		if d, err := parseDigest(m); err == nil && s.mount(r, rt.name, q.Get("from"), d) {
			blobCreated(w, rt.name, d)
			t := blobEvent(r, rt.name, d, 0)
			t.FromRepository = q.Get("from")
			if l, err := s.st.blob(ctx, d); err == nil {
				t.Size = l.Size
			}
			s.emit(r, notify.ActionMount, t)
			return nil
		}
	}
	id := newID()
	st := &uploadState{Repo: rt.name, Started: time.Now().UTC()}
	// The session first: garbage collection never takes the data of a
	// session it listed after listing the data.
	if err := s.saveUpload(ctx, id, st, sha256.New()); err != nil {
		return err
	}
	if err := s.st.d.Put(ctx, dataPath(id), nil); err != nil {
		return errors.Join(err, s.st.dropUpload(ctx, id))
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return errors.Join(err, s.st.dropUpload(ctx, id))
		}
		if err := s.appendChunk(ctx, id, st, r.Body, -1); err != nil {
			return errors.Join(err, s.st.dropUpload(ctx, id))
		}
		return s.finishUpload(w, r, rt.name, id, st, d)
	}
	writeUploadHeaders(w, rt.name, id, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// mount links an existing blob into name when the client may pull it from
// the source repository. Without a source there is no mount (the spec lets
// a registry ignore it): a digest alone must never grant access to content.
func (s *Server) mount(r *http.Request, name, from string, d digest.Digest) bool {
	if from == "" || validName(from) != nil {
		return false
	}
	want := []auth.Access{{Type: "repository", Name: from, Actions: []string{auth.ActionPull}}}
	if from != name && s.auth.Authorize(r, want) != nil {
		return false
	}
	ctx := r.Context()
	g, err := s.st.startGuard(ctx)
	if err != nil {
		return false
	}
	if _, err := s.st.repoBlob(ctx, from, d); err != nil {
		return false
	}
	if s.st.linkLayer(ctx, name, d) != nil {
		return false
	}
	// A blob a collection deleted meanwhile is not mounted: the client
	// uploads it instead.
	lost, err := s.st.protect(ctx, g, []string{blobLinkPath(d)})
	return err == nil && len(lost) == 0
}

func (s *Server) loadUpload(ctx context.Context, rt route) (*uploadState, error) {
	unknown := errf(http.StatusNotFound, codeBlobUploadUnknown, "upload %q unknown", rt.ref)
	if len(rt.ref) != 32 || strings.Trim(rt.ref, "0123456789abcdef") != "" {
		return nil, unknown
	}
	var st uploadState
	err := s.st.getJSON(ctx, uploadPath(rt.ref), &st)
	if errors.Is(err, errdefs.ErrNotFound) || (err == nil && st.Repo != rt.name) {
		return nil, unknown
	}
	return &st, err
}

func (s *Server) saveUpload(ctx context.Context, id string, st *uploadState, h hash.Hash) error {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("upload %s: save hash state: %w", id, err)
	}
	st.SHA256 = b
	return s.st.putJSON(ctx, uploadPath(id), st)
}

func (s *Server) restoreHash(st *uploadState) (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.SHA256); err != nil {
		return nil, fmt.Errorf("upload hash state: %w", err)
	}
	return h, nil
}

// appendChunk appends body to the upload's data and saves the new offset and
// hash state. want is the expected chunk length, or -1 when unknown.
func (s *Server) appendChunk(ctx context.Context, id string, st *uploadState, body io.Reader, want int64) error {
	h, err := s.restoreHash(st)
	if err != nil {
		return err
	}
	fw, err := s.st.d.Writer(ctx, dataPath(id), true)
	if err != nil {
		return err
	}
	if fw.Size() != st.Offset {
		// A writer died between appending and saving the state; the bytes
		// past the offset are not covered by the hash state.
		return errors.Join(errf(http.StatusBadRequest, codeBlobUploadInvalid,
			"upload %s: stored %d bytes, session says %d", id, fw.Size(), st.Offset), fw.Cancel(ctx))
	}
	n, err := io.Copy(io.MultiWriter(fw, h), body)
	if err == nil && want >= 0 && n != want {
		err = errf(http.StatusBadRequest, codeSizeInvalid, "chunk of %d bytes, Content-Range says %d", n, want)
	}
	if err != nil {
		return errors.Join(err, fw.Cancel(ctx))
	}
	if err := fw.Commit(ctx); err != nil {
		return err
	}
	st.Offset += n
	return s.saveUpload(ctx, id, st, h)
}

// chunkRange checks an inclusive "start-end" Content-Range against the
// session: chunks must come in order.
func chunkRange(r *http.Request, offset int64) (int64, error) {
	cr := strings.TrimPrefix(r.Header.Get("Content-Range"), "bytes ")
	if cr == "" {
		return -1, nil
	}
	a, b, ok := strings.Cut(cr, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || start != offset || end < start {
		return 0, errf(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
			"Content-Range %q does not continue the upload at %d", cr, offset)
	}
	if r.ContentLength >= 0 && r.ContentLength != end-start+1 {
		return 0, errf(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
			"Content-Range %q disagrees with Content-Length %d", cr, r.ContentLength)
	}
	return end - start + 1, nil
}

// patchUpload appends a chunk (with Content-Range) or a stream (without).
func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	st, unlock, err := s.lockedUpload(r.Context(), rt)
	if err != nil {
		if st != nil {
			writeUploadHeaders(w, rt.name, rt.ref, st.Offset)
		}
		return err
	}
	defer unlock()
	want, err := chunkRange(r, st.Offset)
	if err != nil {
		writeUploadHeaders(w, rt.name, rt.ref, st.Offset)
		return err
	}
	if err := s.appendChunk(r.Context(), rt.ref, st, r.Body, want); err != nil {
		return err
	}
	writeUploadHeaders(w, rt.name, rt.ref, st.Offset)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// putUpload takes an optional last chunk and completes the upload.
func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	st, unlock, err := s.lockedUpload(r.Context(), rt)
	if err != nil {
		if st != nil {
			writeUploadHeaders(w, rt.name, rt.ref, st.Offset)
		}
		return err
	}
	defer unlock()
	d, err := parseDigest(r.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	if r.ContentLength != 0 {
		want, err := chunkRange(r, st.Offset)
		if err != nil {
			writeUploadHeaders(w, rt.name, rt.ref, st.Offset)
			return err
		}
		if err := s.appendChunk(r.Context(), rt.ref, st, r.Body, want); err != nil {
			return err
		}
	}
	return s.finishUpload(w, r, rt.name, rt.ref, st, d)
}

// finishUpload verifies the digest over the uploaded bytes and links the
// blob. On a mismatch the upload is discarded: nothing is stored.
func (s *Server) finishUpload(w http.ResponseWriter, r *http.Request, name, id string, st *uploadState, d digest.Digest) error {
	ctx := r.Context()
	g, err := s.st.startGuard(ctx)
	if err != nil {
		return err
	}
	got, err := s.uploadDigest(ctx, id, st, d.Algorithm())
	if err != nil {
		return errors.Join(err, s.st.dropUpload(ctx, id))
	}
	if got != d {
		return errors.Join(errf(http.StatusBadRequest, codeDigestInvalid, "uploaded content has digest %s, not %s", got, d),
			s.st.dropUpload(ctx, id))
	}
	if err := s.linkUploaded(ctx, g, name, id, st.Offset, d); err != nil {
		return err
	}
	if err := s.st.d.Delete(ctx, uploadPath(id)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	blobCreated(w, name, d)
	s.emit(r, notify.ActionPush, blobEvent(r, name, d, st.Offset))
	return nil
}

// linkUploaded links the verified data/<id> as blob d of the repository. The
// upload's data is kept until the blob is known to have survived any
// concurrent garbage collection: if a collection deleted an existing copy
// we relied on, ours becomes the blob.
func (s *Server) linkUploaded(ctx context.Context, g guard, name, id string, size int64, d digest.Digest) error {
	for range 5 {
		// used: the link names our data. A link lost to a collection
		// that doomed the digest is relinked; the data the collector
		// deletes is the data it marked, never ours.
		used, err := s.st.link(ctx, d, id, size)
		if err != nil {
			return err
		}
		if err := s.st.linkLayer(ctx, name, d); err != nil {
			return err
		}
		lost, err := s.st.protect(ctx, g, []string{blobLinkPath(d)})
		if err != nil {
			return err
		}
		if len(lost) > 0 {
			continue
		}
		if !used {
			return ignoreNotFound(s.st.d.Delete(ctx, dataPath(id)))
		}
		return nil
	}
	return errGCBusy
}

// uploadDigest uses the running sha256 state; other algorithms (sha512) are
// computed by reading the data back once.
func (s *Server) uploadDigest(ctx context.Context, id string, st *uploadState, alg digest.Algorithm) (digest.Digest, error) {
	if alg == digest.SHA256 {
		h, err := s.restoreHash(st)
		if err != nil {
			return "", err
		}
		return digest.NewDigest(alg, h), nil
	}
	if !alg.Available() {
		return "", errf(http.StatusBadRequest, codeDigestInvalid, "digest algorithm %q not supported", alg)
	}
	rc, err := s.st.d.Reader(ctx, dataPath(id), 0)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	return alg.FromReader(io.LimitReader(rc, st.Offset))
}

func (s *Server) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	st, err := s.loadUpload(r.Context(), rt)
	if err != nil {
		return err
	}
	writeUploadHeaders(w, rt.name, rt.ref, st.Offset)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	_, unlock, err := s.lockedUpload(r.Context(), rt)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.st.dropUpload(r.Context(), rt.ref); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

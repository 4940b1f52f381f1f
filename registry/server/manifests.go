package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
	"berth/registry/notify"
)

// Manifest media types the registry stores.
const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func isIndex(mt string) bool { return mt == ocispec.MediaTypeImageIndex || mt == mtDockerList }

func isManifestType(mt string) bool {
	return isIndex(mt) || mt == ocispec.MediaTypeImageManifest || mt == mtDockerManifest
}

// manifest is the union of the fields of image manifests and indexes that
// the registry checks.
type manifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// resolve turns a tag or digest reference into a digest.
func (s *Server) resolve(ctx context.Context, name, ref string) (digest.Digest, error) {
	if strings.Contains(ref, ":") {
		return parseDigest(ref)
	}
	// An invalid tag cannot name anything stored: unknown, as clients and
	// the conformance suite expect, rather than 400.
	if !tagRe.MatchString(ref) {
		return "", errf(http.StatusNotFound, codeManifestUnknown, "manifest %s:%s unknown", name, ref)
	}
	b, err := s.st.d.Get(ctx, tagPath(name, ref))
	if errors.Is(err, errdefs.ErrNotFound) {
		return "", errf(http.StatusNotFound, codeManifestUnknown, "manifest %s:%s unknown", name, ref)
	} else if err != nil {
		return "", err
	}
	return parseDigest(string(b))
}

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	d, err := s.resolve(ctx, rt.name, rt.ref)
	if err != nil {
		return err
	}
	var rev revision
	if err := s.st.getJSON(ctx, revisionPath(rt.name, d), &rev); errors.Is(err, errdefs.ErrNotFound) {
		return errf(http.StatusNotFound, codeManifestUnknown, "manifest %s@%s unknown", rt.name, d)
	} else if err != nil {
		return err
	}
	if !acceptable(r.Header.Values("Accept"), rev.MediaType) {
		// As the CNCF registry does: a client that cannot parse this type
		// gets "unknown" rather than bytes it would misread.
		return errf(http.StatusNotFound, codeManifestUnknown, "manifest %s@%s is %s, which the Accept header excludes", rt.name, d, rev.MediaType)
	}
	body, err := s.st.readSmallBlob(ctx, d)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", rev.MediaType)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
		// HEADs are not pulls: clients HEAD to check before they GET.
		tag := ""
		if !strings.Contains(rt.ref, ":") {
			tag = rt.ref
		}
		s.emit(r, notify.ActionPull, manifestEvent(r, rt.name, d, rev.MediaType, int64(len(body)), tag))
	}
	return nil
}

// acceptable reports whether Accept headers admit media type mt. No Accept
// header admits everything.
func acceptable(accept []string, mt string) bool {
	if len(accept) == 0 {
		return true
	}
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			t, _, _ := strings.Cut(part, ";")
			switch strings.TrimSpace(t) {
			case mt, "*/*", "application/*", "":
				return true
			}
		}
	}
	return false
}

// readManifest reads at most the size limit, answering 413 beyond it.
func (s *Server) readManifest(r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxManifest {
		return nil, errf(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest of %d bytes exceeds %d", r.ContentLength, s.maxManifest)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.maxManifest+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > s.maxManifest {
		return nil, errf(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest exceeds %d bytes", s.maxManifest)
	}
	return body, nil
}

// parseManifest checks the body is a manifest of a supported type whose
// declared media type agrees with Content-Type.
func parseManifest(contentType string, body []byte) (manifest, string, error) {
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return m, "", errf(http.StatusBadRequest, codeManifestInvalid, "manifest is not JSON: %v", err)
	}
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	if mt == "" || mt == "application/json" || mt == "application/octet-stream" {
		mt = m.MediaType
	}
	if m.MediaType != "" && m.MediaType != mt {
		return m, "", errf(http.StatusBadRequest, codeManifestInvalid, "mediaType %q disagrees with Content-Type %q", m.MediaType, mt)
	}
	if !isManifestType(mt) {
		return m, "", errf(http.StatusBadRequest, codeManifestInvalid, "unsupported manifest media type %q", mt)
	}
	if m.SchemaVersion != 2 {
		return m, "", errf(http.StatusBadRequest, codeManifestInvalid, "schemaVersion %d, want 2", m.SchemaVersion)
	}
	if !isIndex(mt) && m.Config == nil {
		return m, "", errf(http.StatusBadRequest, codeManifestInvalid, "image manifest without config")
	}
	return m, mt, nil
}

// checkReferences requires every blob and child manifest the manifest names
// to be in the repository, except layers that are not distributable (their
// bytes live elsewhere by design). The subject may be missing (spec).
func (s *Server) checkReferences(ctx context.Context, name string, m manifest, mt string) error {
	var blobs []ocispec.Descriptor
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, l := range m.Layers {
		if !strings.Contains(l.MediaType, "nondistributable") && !strings.Contains(l.MediaType, "foreign") {
			blobs = append(blobs, l)
		}
	}
	for _, b := range blobs {
		l, err := s.st.repoBlob(ctx, name, b.Digest)
		if errors.Is(err, errdefs.ErrNotFound) || b.Digest.Validate() != nil {
			return &apiError{status: http.StatusBadRequest, code: codeManifestBlobUnknown,
				message: "manifest references unknown blob " + b.Digest.String(), detail: map[string]string{"digest": b.Digest.String()}}
		} else if err != nil {
			return err
		}
		if l.Size != b.Size {
			return errf(http.StatusBadRequest, codeManifestInvalid, "blob %s has size %d, manifest says %d", b.Digest, l.Size, b.Size)
		}
	}
	for _, c := range m.Manifests {
		_, err := s.st.d.Stat(ctx, revisionPath(name, c.Digest))
		if errors.Is(err, errdefs.ErrNotFound) || c.Digest.Validate() != nil {
			return &apiError{status: http.StatusBadRequest, code: codeManifestBlobUnknown,
				message: "index references unknown manifest " + c.Digest.String(), detail: map[string]string{"digest": c.Digest.String()}}
		} else if err != nil {
			return err
		}
	}
	return nil
}

// manifestTarget computes the manifest's digest (checking it against a
// digest reference) and the tags to point at it.
func manifestTarget(r *http.Request, ref string, body []byte) (digest.Digest, []string, error) {
	var tags []string
	d := digest.SHA256.FromBytes(body)
	if strings.Contains(ref, ":") {
		want, err := parseDigest(ref)
		if err != nil {
			return "", nil, err
		}
		if !want.Algorithm().Available() {
			return "", nil, errf(http.StatusBadRequest, codeDigestInvalid, "digest algorithm %q not supported", want.Algorithm())
		}
		if d = want.Algorithm().FromBytes(body); d != want {
			return "", nil, errf(http.StatusBadRequest, codeDigestInvalid, "manifest has digest %s, not %s", d, want)
		}
	} else {
		tags = append(tags, ref)
	}
	tags = append(tags, r.URL.Query()["tag"]...)
	for _, t := range tags {
		if !tagRe.MatchString(t) {
			return "", nil, errf(http.StatusBadRequest, codeTagInvalid, "invalid tag %q", t)
		}
	}
	return d, tags, nil
}

// deleteManifest deletes a tag, or by digest the manifest with every tag
// pointing at it and its referrers entry.
func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	if !strings.Contains(rt.ref, ":") {
		if _, err := s.resolve(ctx, rt.name, rt.ref); err != nil {
			return err
		}
		if err := s.st.d.Delete(ctx, tagPath(rt.name, rt.ref)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		s.emit(r, notify.ActionDelete, notify.Target{Repository: rt.name, Tag: rt.ref})
		return accepted(w)
	}
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	var rev revision
	if err := s.st.getJSON(ctx, revisionPath(rt.name, d), &rev); errors.Is(err, errdefs.ErrNotFound) {
		return errf(http.StatusNotFound, codeManifestUnknown, "manifest %s@%s unknown", rt.name, d)
	} else if err != nil {
		return err
	}
	if err := s.untagAll(ctx, rt.name, d); err != nil {
		return err
	}
	if rev.Subject != "" {
		if subj, err := digest.Parse(rev.Subject); err == nil {
			err := s.st.d.Delete(ctx, referrerEntry(rt.name, subj, d))
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return err
			}
		}
	}
	if err := s.st.d.Delete(ctx, revisionPath(rt.name, d)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	s.emit(r, notify.ActionDelete, notify.Target{MediaType: rev.MediaType, Digest: d, Repository: rt.name,
		URL: targetURL(r, rt.name, "manifests", d)})
	return accepted(w)
}

func (s *Server) untagAll(ctx context.Context, name string, d digest.Digest) error {
	tags, err := s.st.listOrEmpty(ctx, tagsPath(name))
	if err != nil {
		return err
	}
	for _, t := range tags {
		b, err := s.st.d.Get(ctx, tagPath(name, t))
		if err != nil || !bytes.Equal(b, []byte(d.String())) {
			continue
		}
		if err := s.st.d.Delete(ctx, tagPath(name, t)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}

func accepted(w http.ResponseWriter) error {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
	"berth/registry/notify"
)

// putManifest stores a manifest by tag or digest, plus any ?tag= tags.
func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	g, err := s.st.startGuard(ctx)
	if err != nil {
		return err
	}
	body, err := s.readManifest(r)
	if err != nil {
		return err
	}
	d, tags, err := manifestTarget(r, rt.ref, body)
	if err != nil {
		return err
	}
	m, mt, err := parseManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	if err := s.checkReferences(ctx, rt.name, m, mt); err != nil {
		return err
	}
	mw := manifestWrite{name: rt.name, d: d, m: m, mt: mt, body: body, tags: tags}
	if err := s.commitManifest(ctx, g, mw); err != nil {
		return err
	}
	if m.Subject != nil {
		w.Header().Set("OCI-Subject", m.Subject.Digest.String())
	}
	for _, t := range tags {
		w.Header().Add("OCI-Tag", t)
	}
	w.Header().Set("Location", "/v2/"+rt.name+"/manifests/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	// One event per tag set, or one for a push by digest.
	var targets []notify.Target
	for _, t := range tags {
		targets = append(targets, manifestEvent(r, rt.name, d, mt, int64(len(body)), t))
	}
	if len(targets) == 0 {
		targets = append(targets, manifestEvent(r, rt.name, d, mt, int64(len(body)), ""))
	}
	s.emit(r, notify.ActionPush, targets...)
	return nil
}

// manifestWrite is one manifest PUT: the manifest and the tags to set.
type manifestWrite struct {
	name string
	d    digest.Digest
	m    manifest
	mt   string
	body []byte
	tags []string
}

// commitManifest writes the manifest's blob, referrer entry, revision and
// tags, then makes sure a concurrent garbage collection kept everything it
// references. What the request itself wrote is written again if a
// collection took it; a referenced blob a collection deleted fails the
// request and undoes it: no new revision, the tags as they were.
func (s *Server) commitManifest(ctx context.Context, g guard, mw manifestWrite) error {
	_, err := s.st.d.Stat(ctx, revisionPath(mw.name, mw.d))
	existed := err == nil
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	prev := map[string][]byte{}
	for _, t := range mw.tags {
		b, err := s.st.d.Get(ctx, tagPath(mw.name, t))
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		prev[t] = b
	}
	for range 5 {
		if err := s.writeManifest(ctx, mw); err != nil {
			return err
		}
		quiet, err := s.st.gcQuiet(ctx, g)
		if err != nil || quiet {
			return err
		}
		paths, err := s.manifestPaths(ctx, mw.name, mw.d, mw.m, 2)
		if err != nil {
			return err
		}
		lost, err := s.st.protectPaths(ctx, paths)
		if err != nil {
			return err
		}
		own := map[string]bool{revisionPath(mw.name, mw.d): true, blobLinkPath(mw.d): true}
		for _, p := range lost {
			if !own[p] {
				return errors.Join(&apiError{status: http.StatusBadRequest, code: codeManifestBlobUnknown,
					message: "manifest references " + p + ", deleted by garbage collection during the push"},
					s.undoManifest(ctx, mw, existed, prev))
			}
		}
		if len(lost) == 0 {
			return nil
		}
	}
	return errGCBusy
}

func (s *Server) writeManifest(ctx context.Context, mw manifestWrite) error {
	if err := s.st.putSmallBlob(ctx, mw.d, mw.body); err != nil {
		return err
	}
	rev := revision{MediaType: mw.mt}
	if mw.m.Subject != nil {
		rev.Subject = mw.m.Subject.Digest.String()
		if err := s.putReferrer(ctx, mw.name, mw.d, mw.m, mw.mt, int64(len(mw.body))); err != nil {
			return err
		}
	}
	if err := s.st.putJSON(ctx, revisionPath(mw.name, mw.d), rev); err != nil {
		return err
	}
	for _, t := range mw.tags {
		if err := s.st.d.Put(ctx, tagPath(mw.name, t), []byte(mw.d.String())); err != nil {
			return err
		}
	}
	return nil
}

// undoManifest restores the tags a failed PUT set and removes the revision
// it created.
func (s *Server) undoManifest(ctx context.Context, mw manifestWrite, existed bool, prev map[string][]byte) error {
	var errs []error
	for t, b := range prev {
		if b == nil {
			errs = append(errs, ignoreNotFound(s.st.d.Delete(ctx, tagPath(mw.name, t))))
		} else {
			errs = append(errs, s.st.d.Put(ctx, tagPath(mw.name, t), b))
		}
	}
	if !existed {
		errs = append(errs, ignoreNotFound(s.st.d.Delete(ctx, revisionPath(mw.name, mw.d))))
		if mw.m.Subject != nil {
			errs = append(errs, ignoreNotFound(s.st.d.Delete(ctx, referrerEntry(mw.name, mw.m.Subject.Digest, mw.d))))
		}
	}
	return errors.Join(errs...)
}

// manifestPaths lists the storage objects manifest d of the repository
// relies on: its revision and blob, its config and layers, and its child
// manifests with what they rely on, depth levels down.
func (s *Server) manifestPaths(ctx context.Context, name string, d digest.Digest, m manifest, depth int) ([]string, error) {
	paths := []string{revisionPath(name, d), blobLinkPath(d)}
	if m.Config != nil {
		paths = append(paths, blobLinkPath(m.Config.Digest))
	}
	for _, l := range m.Layers {
		if !strings.Contains(l.MediaType, "nondistributable") && !strings.Contains(l.MediaType, "foreign") {
			paths = append(paths, blobLinkPath(l.Digest))
		}
	}
	for _, c := range m.Manifests {
		if depth == 0 {
			paths = append(paths, revisionPath(name, c.Digest), blobLinkPath(c.Digest))
			continue
		}
		body, err := s.st.readSmallBlob(ctx, c.Digest)
		if errors.Is(err, errdefs.ErrNotFound) {
			paths = append(paths, revisionPath(name, c.Digest), blobLinkPath(c.Digest))
			continue
		} else if err != nil {
			return nil, err
		}
		child, _, err := parseManifest("", body)
		if err != nil {
			paths = append(paths, revisionPath(name, c.Digest), blobLinkPath(c.Digest))
			continue
		}
		sub, err := s.manifestPaths(ctx, name, c.Digest, child, depth-1)
		if err != nil {
			return nil, err
		}
		paths = append(paths, sub...)
	}
	return paths, nil
}

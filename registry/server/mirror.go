package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
	"berth/registry/upstream"
)

// Upstream is what a mirror needs of the registry it mirrors; upstream.Client
// is the implementation.
type Upstream interface {
	URL() string
	Manifest(ctx context.Context, repo, ref string, head bool, maxSize int64) (upstream.Manifest, error)
	Blob(ctx context.Context, repo string, d digest.Digest, head bool) (io.ReadCloser, int64, error)
	Tags(ctx context.Context, repo string) ([]string, error)
}

// Mirror makes a namespace of this registry a pull-through cache of an
// upstream registry: upstream repository R is cached as <Namespace>/R.
// Clients name it so, or as R with ?ns=<one of Hosts> (containerd's and
// berth's convention for registry-mirrors), or as plain R when the mirror
// is the Default and no local repository R exists.
type Mirror struct {
	Namespace string
	Hosts     []string
	Default   bool
	// TTL is how long a tag is served before asking the upstream whether
	// it moved; zero means DefaultMirrorTTL.
	TTL      time.Duration
	Upstream Upstream
}

// DefaultMirrorTTL is how long mirrored tags are trusted.
const DefaultMirrorTTL = 5 * time.Minute

// mirrorTarget is a request routed to a mirror: rt.name has become the
// cache's repository name; upRepo is the name upstream.
type mirrorTarget struct {
	m      *Mirror
	upRepo string
	ttl    time.Duration
}

// mirrorState is repositories/<name>/_mirror/tags/<tag>: when the cached
// tag was last confirmed upstream.
type mirrorState struct {
	Digest  digest.Digest `json:"digest"`
	Checked time.Time     `json:"checked"`
}

func mirrorStatePath(name, tag string) string { return repoPath(name) + "/_mirror/tags/" + tag }

// routeMirror decides whether a request is for a mirror and rewrites
// rt.name to the cache's name.
func (s *Server) routeMirror(r *http.Request, rt *route) (*mirrorTarget, error) {
	if len(s.mirrors) == 0 || (rt.kind != "manifest" && rt.kind != "blob" && rt.kind != "tags" &&
		rt.kind != "upload" && rt.kind != "referrers") {
		return nil, nil
	}
	target := func(m *Mirror, up, local string) (*mirrorTarget, error) {
		if err := validName(local); err != nil {
			return nil, err
		}
		rt.name = local
		ttl := m.TTL
		if ttl <= 0 {
			ttl = DefaultMirrorTTL
		}
		return &mirrorTarget{m: m, upRepo: up, ttl: ttl}, nil
	}
	if ns := r.URL.Query().Get("ns"); ns != "" {
		for i := range s.mirrors {
			if m := &s.mirrors[i]; slices.Contains(m.Hosts, ns) {
				return target(m, rt.name, m.Namespace+"/"+rt.name)
			}
		}
		return nil, nil
	}
	if first, rest, ok := strings.Cut(rt.name, "/"); ok {
		for i := range s.mirrors {
			if m := &s.mirrors[i]; m.Namespace == first {
				return target(m, rest, rt.name)
			}
		}
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	for i := range s.mirrors {
		if m := &s.mirrors[i]; m.Default && read && rt.kind != "upload" {
			local, err := s.st.repoExists(r.Context(), rt.name)
			if err != nil || local {
				return nil, err
			}
			return target(m, rt.name, m.Namespace+"/"+rt.name)
		}
	}
	return nil, nil
}

// serveMirror answers a request routed to a mirror: reads through the
// cache, writes refused.
func (s *Server) serveMirror(w http.ResponseWriter, r *http.Request, rt route, mt *mirrorTarget) error {
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case !read || rt.kind == "upload":
		return errf(http.StatusMethodNotAllowed, codeUnsupported, "%s is a read-only mirror of %s", rt.name, mt.m.Upstream.URL())
	case rt.kind == "manifest":
		return s.mirrorManifest(w, r, rt, mt)
	case rt.kind == "blob":
		return s.mirrorBlob(w, r, rt, mt)
	case rt.kind == "tags":
		return s.mirrorTags(w, r, rt, mt)
	}
	return s.getReferrers(w, r, rt)
}

// upstreamError turns an upstream failure into the answer for the client.
func upstreamError(err error, notFound *apiError) error {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return notFound
	case errors.Is(err, context.Canceled):
		return err
	}
	return errf(http.StatusBadGateway, codeUnknown, "%v", err)
}

func (s *Server) mirrorManifest(w http.ResponseWriter, r *http.Request, rt route, mt *mirrorTarget) error {
	ctx := r.Context()
	unknown := errf(http.StatusNotFound, codeManifestUnknown, "manifest %s:%s unknown upstream", rt.name, rt.ref)
	if strings.Contains(rt.ref, ":") {
		d, err := parseDigest(rt.ref)
		if err != nil {
			return err
		}
		if _, err := s.st.d.Stat(ctx, revisionPath(rt.name, d)); err == nil {
			return s.getManifest(w, r, rt)
		}
		_, err, _ = s.flight.Do("m:"+rt.name+"@"+rt.ref, func() (any, error) {
			return nil, s.fetchManifest(context.WithoutCancel(ctx), mt, rt.name, rt.ref, "")
		})
		if err != nil {
			return upstreamError(err, unknown)
		}
		return s.getManifest(w, r, rt)
	}
	if !tagRe.MatchString(rt.ref) {
		return unknown
	}
	var state mirrorState
	err := s.st.getJSON(ctx, mirrorStatePath(rt.name, rt.ref), &state)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if err == nil && time.Since(state.Checked) < mt.ttl {
		return s.getManifest(w, r, rt)
	}
	_, err, _ = s.flight.Do("t:"+rt.name+":"+rt.ref, func() (any, error) {
		return nil, s.revalidate(context.WithoutCancel(ctx), mt, rt.name, rt.ref, state)
	})
	switch {
	case err == nil:
	case errors.Is(err, errdefs.ErrNotFound):
		// Gone upstream: so is our copy of the tag.
		s.log.InfoContext(ctx, "mirrored tag gone upstream", "repository", rt.name, "tag", rt.ref)
		for _, p := range []string{tagPath(rt.name, rt.ref), mirrorStatePath(rt.name, rt.ref)} {
			if err := ignoreNotFound(s.st.d.Delete(ctx, p)); err != nil {
				return err
			}
		}
		return unknown
	case state.Digest != "":
		s.log.WarnContext(ctx, "upstream unavailable, serving the cached tag", "repository", rt.name, "tag", rt.ref, "err", err)
		w.Header().Set("Warning", `299 - "upstream unavailable; this is the cached copy"`)
	default:
		return upstreamError(err, unknown)
	}
	return s.getManifest(w, r, rt)
}

// revalidate asks the upstream where a tag points now (HEAD, which
// registries do not count against pull limits) and fetches the manifest
// only when it moved.
func (s *Server) revalidate(ctx context.Context, mt *mirrorTarget, name, tag string, state mirrorState) error {
	if state.Digest != "" {
		head, err := mt.m.Upstream.Manifest(ctx, mt.upRepo, tag, true, s.maxManifest)
		if err != nil {
			return err
		}
		if head.Digest == state.Digest {
			if _, err := s.st.d.Stat(ctx, revisionPath(name, head.Digest)); err == nil {
				return s.st.putJSON(ctx, mirrorStatePath(name, tag), mirrorState{Digest: head.Digest, Checked: time.Now().UTC()})
			}
		}
	}
	return s.fetchManifest(ctx, mt, name, tag, tag)
}

// fetchManifest caches the upstream's manifest ref, tagging it when tag is
// set.
func (s *Server) fetchManifest(ctx context.Context, mt *mirrorTarget, name, ref, tag string) error {
	m, err := mt.m.Upstream.Manifest(ctx, mt.upRepo, ref, false, s.maxManifest)
	if err != nil {
		return err
	}
	parsed, mediaType, err := parseManifest(m.MediaType, m.Body)
	if err != nil {
		return errors.Join(errdefs.ErrUnavailable, err)
	}
	mw := manifestWrite{name: name, d: m.Digest, m: parsed, mt: mediaType, body: m.Body}
	if tag != "" {
		mw.tags = []string{tag}
	}
	g, err := s.st.startGuard(ctx)
	if err != nil {
		return err
	}
	// The blobs it names come from upstream when asked for: only what this
	// request writes needs protecting from a collection.
	for range 5 {
		if err := s.writeManifest(ctx, mw); err != nil {
			return err
		}
		lost, err := s.st.protect(ctx, g, []string{revisionPath(name, m.Digest), blobLinkPath(m.Digest)})
		if err != nil {
			return err
		}
		if len(lost) == 0 {
			if tag == "" {
				return nil
			}
			return s.st.putJSON(ctx, mirrorStatePath(name, tag), mirrorState{Digest: m.Digest, Checked: time.Now().UTC()})
		}
	}
	return errGCBusy
}

// mirrorTags lists the upstream's tags, or the cached ones when it is down.
func (s *Server) mirrorTags(w http.ResponseWriter, r *http.Request, rt route, mt *mirrorTarget) error {
	tags, err := mt.m.Upstream.Tags(r.Context(), mt.upRepo)
	if err == nil {
		slices.Sort(tags)
		out, link, err := page(r, tags)
		if err != nil {
			return err
		}
		if link != "" {
			w.Header().Set("Link", link)
		}
		return writeJSON(w, struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}{rt.name, append([]string{}, out...)})
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return errf(http.StatusNotFound, codeNameUnknown, "repository %s unknown upstream", mt.upRepo)
	}
	s.log.WarnContext(r.Context(), "upstream unavailable, listing cached tags", "repository", rt.name, "err", err)
	return s.listTags(w, r, rt)
}

package server

import (
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"

	"berth/registry/auth"
	"berth/registry/storage"
)

// DefaultMaxManifestSize bounds manifest bodies, as other registries do.
const DefaultMaxManifestSize = 4 << 20

// Options configure a Server. Storage is required.
type Options struct {
	Storage         storage.Driver
	Authorizer      auth.Authorizer // nil allows everything
	Log             *slog.Logger    // nil discards
	MaxManifestSize int64           // 0 means DefaultMaxManifestSize
	// Mirrors make namespaces pull-through caches of upstream registries.
	Mirrors []Mirror
	// Events receives pushes, pulls, mounts and deletes; nil sends none.
	Events EventSink
}

// Server serves the /v2/ API.
type Server struct {
	st          store
	auth        auth.Authorizer
	log         *slog.Logger
	maxManifest int64
	routes      map[routeKey]handler
	gcView      gcView
	mirrors     []Mirror
	flight      singleflight.Group // mirror downloads shared by concurrent requests
	events      EventSink
}

type routeKey struct{ kind, method string }

// New returns a server over opts.Storage.
func New(opts Options) *Server {
	s := &Server{st: store{d: opts.Storage}, auth: opts.Authorizer, log: opts.Log, maxManifest: opts.MaxManifestSize,
		mirrors: opts.Mirrors, events: opts.Events}
	if s.auth == nil {
		s.auth = auth.AllowAll{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxManifest <= 0 {
		s.maxManifest = DefaultMaxManifestSize
	}
	s.routes = map[routeKey]handler{
		{"base", "GET"}: s.base, {"base", "HEAD"}: s.base,
		{"catalog", "GET"}: s.catalog,
		{"tags", "GET"}:    s.listTags,
		{"blob", "GET"}:    s.getBlob, {"blob", "HEAD"}: s.getBlob, {"blob", "DELETE"}: s.deleteBlob,
		{"upload", "POST"}: s.startUpload, {"upload", "PATCH"}: s.patchUpload,
		{"upload", "PUT"}: s.putUpload, {"upload", "GET"}: s.uploadStatus, {"upload", "DELETE"}: s.cancelUpload,
		{"manifest", "GET"}: s.getManifest, {"manifest", "HEAD"}: s.getManifest,
		{"manifest", "PUT"}: s.putManifest, {"manifest", "DELETE"}: s.deleteManifest,
		{"referrers", "GET"}: s.getReferrers,
	}
	return s
}

var (
	nameRe = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRe  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

const maxNameLen = 255

// ValidName reports whether name is a repository name of the distribution
// spec's grammar.
func ValidName(name string) bool { return len(name) <= maxNameLen && nameRe.MatchString(name) }

// ValidTag reports whether tag is a tag of the distribution spec's grammar.
func ValidTag(tag string) bool { return tagRe.MatchString(tag) }

// route is a parsed /v2/ path.
type route struct {
	kind string // base, catalog, tags, manifest, blob, upload, referrers
	name string
	ref  string // tag, digest or upload id
}

// parseRoute splits a /v2/ path. Repository names contain slashes, so the
// resource is recognised from the end of the path.
func parseRoute(p string) (route, bool) {
	if p == "/v2" || p == "/v2/" {
		return route{kind: "base"}, true
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, false
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	c := strings.Split(rest, "/")
	n := len(c)
	switch {
	case n >= 3 && c[n-2] == "tags" && c[n-1] == "list":
		return route{kind: "tags", name: join(c[:n-2])}, true
	case n >= 4 && c[n-3] == "blobs" && c[n-2] == "uploads":
		return route{kind: "upload", name: join(c[:n-3]), ref: c[n-1]}, true
	case n >= 3 && c[n-2] == "blobs" && c[n-1] == "uploads":
		return route{kind: "upload", name: join(c[:n-2])}, true
	case n >= 3 && c[n-2] == "manifests":
		return route{kind: "manifest", name: join(c[:n-2]), ref: c[n-1]}, true
	case n >= 3 && c[n-2] == "blobs":
		return route{kind: "blob", name: join(c[:n-2]), ref: c[n-1]}, true
	case n >= 3 && c[n-2] == "referrers":
		return route{kind: "referrers", name: join(c[:n-2]), ref: c[n-1]}, true
	}
	return route{}, false
}

func join(c []string) string { return strings.Join(c, "/") }

func validName(name string) error {
	if len(name) > maxNameLen || !nameRe.MatchString(name) {
		return errf(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q", name)
	}
	return nil
}

// parseDigest validates a digest from the client.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", errf(http.StatusBadRequest, codeDigestInvalid, "invalid digest %q", s)
	}
	return d, nil
}

// ServeHTTP routes a request to its resource handler after authorizing it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		s.writeError(w, r, errf(http.StatusNotFound, codeUnsupported, "no route for %s", r.URL.Path))
		return
	}
	if rt.kind != "base" && rt.kind != "catalog" {
		if err := validName(rt.name); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	mt, err := s.routeMirror(r, &rt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auth.Authorize(r, s.accessFor(r, rt)); err != nil {
		s.writeError(w, r, err)
		return
	}
	if mt != nil {
		if err := s.serveMirror(w, r, rt, mt); err != nil {
			s.writeError(w, r, err)
		}
		return
	}
	h := s.routes[routeKey{rt.kind, r.Method}]
	if h == nil {
		s.writeError(w, r, errf(http.StatusMethodNotAllowed, codeUnsupported, "%s not allowed on %s", r.Method, rt.kind))
		return
	}
	if err := h(w, r, rt); err != nil {
		s.writeError(w, r, err)
	}
}

type handler func(w http.ResponseWriter, r *http.Request, rt route) error

// accessFor lists what a request needs: pull to read, push to write,
// delete to delete; mounting also needs pull on the source repository.
func (s *Server) accessFor(r *http.Request, rt route) []auth.Access {
	switch rt.kind {
	case "base":
		return nil
	case "catalog":
		return []auth.Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	}
	var action string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		action = auth.ActionPull
		if rt.kind == "upload" {
			action = auth.ActionPush
		}
	case http.MethodDelete:
		action = auth.ActionDelete
		if rt.kind == "upload" {
			action = auth.ActionPush
		}
	default:
		action = auth.ActionPush
	}
	want := []auth.Access{{Type: "repository", Name: rt.name, Actions: []string{action}}}
	if action == auth.ActionPush && rt.kind == "upload" && r.Method == http.MethodPost {
		// Pull on the mount source is optional: startUpload falls back to a
		// plain upload when it is not granted.
		want[0].Actions = []string{auth.ActionPull, auth.ActionPush}
		if q := r.URL.Query(); q.Get("mount") != "" && q.Get("from") != "" && q.Get("from") != rt.name && validName(q.Get("from")) == nil {
			want = append(want, auth.Access{Type: "repository", Name: q.Get("from"), Actions: []string{auth.ActionPull}, Optional: true})
		}
	}
	return want
}

func (s *Server) base(w http.ResponseWriter, r *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write([]byte("{}"))
	}
	return nil
}

// RouteKind names the API resource a path addresses (base, catalog, tags,
// manifest, blob, upload, referrers), or "other"; metrics and access logs
// label requests with it.
func RouteKind(path string) string {
	if rt, ok := parseRoute(path); ok {
		return rt.kind
	}
	return "other"
}

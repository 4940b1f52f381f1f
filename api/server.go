// Package api serves the Docker Engine API over HTTP. It declares the narrow
// backend interfaces it needs (backend.go), routes versioned and unversioned
// paths to them, and turns errdefs kinds into HTTP statuses in one place
// (statusOf). It holds no state of its own besides its Options.
package api

import (
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"berth/errdefs"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/system"
)

// The API versions this server speaks. Clients asking for a version outside
// [MinAPIVersion, APIVersion] get a 400; unversioned paths get APIVersion.
const (
	APIVersion    = "1.51"
	MinAPIVersion = "1.24"
)

// VersionInfo describes the daemon binary for /version and the Server header.
type VersionInfo struct {
	Version       string
	GitCommit     string
	GoVersion     string
	Os            string
	Arch          string
	KernelVersion string
	BuildTime     string
	// Components lists the pieces besides the engine itself, for example
	// {Name: "runc", Version: "1.1.5", Details: {"GitCommit": "..."}}. An
	// "Engine" entry is ignored: the handler describes the engine from the
	// fields above and the API versions it serves.
	Components []system.ComponentVersion
}

// Options configures the handler returned by New.
type Options struct {
	Images ImageBackend
	System SystemBackend
	// Containers serves /containers/... and /exec/...; Events serves
	// /events.
	Containers ContainerBackend
	Events     EventsBackend
	Version    VersionInfo
	// Logger gets every request at debug level and failures at debug
	// (client errors) or error (server errors); nil discards.
	Logger *slog.Logger

	// Distribution serves pull, push and /distribution; Auth serves
	// /auth (registry.go).
	Distribution DistributionBackend
	Auth         AuthBackend

	// ImageArchive serves save (/images/get, /images/{name}/get) and
	// load (/images/load) (image_archive.go).
	ImageArchive ImageArchiveBackend

	// Commit serves POST /commit (commit.go).
	Commit CommitBackend

	// Networks serves /networks (network.go).
	Networks NetworkBackend

	// Volumes serves /volumes (volume.go).
	Volumes VolumeBackend

	// Build serves POST /build and /build/prune (build.go).
	Build BuildBackend
}

// request is what a handler needs to know about the call besides the
// http.Request: the negotiated API version and the path's image name, if any.
type request struct {
	version string
	name    string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, req request) error

// route matches "METHOD prefix{name}suffix", or the exact path prefix when
// wild is false. Image names contain "/" and ":", so they can only be found
// by trimming a known prefix and suffix.
type route struct {
	method string
	prefix string
	suffix string
	wild   bool
	h      handlerFunc
}

func (rt route) match(method, path string) (string, bool) {
	if rt.method != method {
		return "", false
	}
	if !rt.wild {
		return "", path == rt.prefix
	}
	if len(path) <= len(rt.prefix)+len(rt.suffix) || !strings.HasPrefix(path, rt.prefix) || !strings.HasSuffix(path, rt.suffix) {
		return "", false
	}
	return path[len(rt.prefix) : len(path)-len(rt.suffix)], true
}

type server struct {
	opts   Options
	log    *slog.Logger
	exact  []route
	wilds  []route
	header http.Header
}

// New returns the Engine API handler.
func New(opts Options) http.Handler {
	s := &server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.header = http.Header{
		"Api-Version":         {APIVersion},
		"Ostype":              {"linux"},
		"Docker-Experimental": {"false"},
		"Server":              {"berth/" + opts.Version.Version + " (linux)"},
	}
	s.addSystemRoutes()
	s.addImageRoutes()
	s.addImageArchiveRoutes()
	s.addRegistryRoutes()
	if opts.Containers != nil {
		s.addContainerRoutes()
		s.addExecRoutes()
	}
	if opts.Events != nil {
		s.addEventRoutes()
	}
	if opts.Networks != nil {
		s.addNetworkRoutes()
	}
	if opts.Volumes != nil {
		s.addVolumeRoutes()
	}
	if opts.Commit != nil {
		s.addCommitRoutes()
	}
	if opts.Build != nil {
		s.addBuildRoutes()
	}
	return s
}

func (s *server) handle(method, path string, h handlerFunc) {
	if prefix, suffix, ok := strings.Cut(path, "{name}"); ok {
		s.wilds = append(s.wilds, route{method: method, prefix: prefix, suffix: suffix, wild: true, h: h})
		// Longest suffix first, so DELETE /images/{name} can never swallow
		// a more specific route whatever the registration order.
		slices.SortStableFunc(s.wilds, func(a, b route) int { return len(b.suffix) - len(a.suffix) })
		return
	}
	s.exact = append(s.exact, route{method: method, prefix: path, h: h})
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range s.header {
		w.Header().Set(k, v[0])
	}
	version, path, err := splitVersion(r.URL.Path)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h, name, ok := s.lookup(r.Method, path)
	if !ok {
		writeJSON(w, http.StatusNotFound, errorResponse{Message: "page not found"})
		return
	}
	s.log.DebugContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "version", version)
	rw := &responseWriter{ResponseWriter: w}
	err = h(rw, r, request{version: version, name: name})
	switch {
	case err == nil:
	case !rw.wroteHeader:
		s.writeError(w, r, err)
	default:
		// The status is already out: a streaming handler failed half-way,
		// so the error travels in the stream, as dockerd sends it.
		s.log.ErrorContext(r.Context(), "stream failed", "method", r.Method, "path", r.URL.Path, "err", err)
		_ = writeStream(rw, streamMessage{
			Message:      jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}},
			ErrorMessage: err.Error(),
		})
	}
}

// responseWriter remembers whether the status line was sent, which decides
// how a handler's error reaches the client.
type responseWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(status int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *server) lookup(method, path string) (handlerFunc, string, bool) {
	for _, rt := range s.exact {
		if _, ok := rt.match(method, path); ok {
			return rt.h, "", true
		}
	}
	for _, rt := range s.wilds {
		if name, ok := rt.match(method, path); ok {
			return rt.h, name, true
		}
	}
	return nil, "", false
}

// splitVersion strips an optional "/vX.Y" prefix and checks X.Y against the
// supported range.
func splitVersion(path string) (version, rest string, err error) {
	if !strings.HasPrefix(path, "/v") {
		return APIVersion, path, nil
	}
	seg, rest, _ := strings.Cut(path[2:], "/")
	if !isVersion(seg) {
		return APIVersion, path, nil
	}
	rest = "/" + rest
	switch {
	case compareVersions(seg, MinAPIVersion) < 0:
		return "", "", errdefs.Errorf(errdefs.ErrInvalidArgument, "client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", seg, MinAPIVersion)
	case compareVersions(seg, APIVersion) > 0:
		return "", "", errdefs.Errorf(errdefs.ErrInvalidArgument, "client version %s is too new. Maximum supported API version is %s", seg, APIVersion)
	}
	return seg, rest, nil
}

func isVersion(s string) bool {
	major, minor, ok := strings.Cut(s, ".")
	if !ok {
		return false
	}
	_, err1 := strconv.Atoi(major)
	_, err2 := strconv.Atoi(minor)
	return err1 == nil && err2 == nil && major != "" && minor != ""
}

// compareVersions compares dotted numeric versions ("1.9" < "1.24").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

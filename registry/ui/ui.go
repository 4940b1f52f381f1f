// Package ui is the registry's web interface at /ui/: sign in with the
// registry's own accounts, browse namespaces, repositories and tags, inspect
// manifests (layers, platforms, image config, history, referrers), copy pull
// commands and delete tags.
//
// Pages are rendered on the server with html/template from embedded
// templates; the only script (static/app.js) adds the copy buttons and the
// delete confirmation. Every read and every delete goes through an
// in-process server.Server over the same storage (the /v2/ code paths, so
// validation, garbage-collection safety and deletion semantics are the
// API's), whose authorizer is the signed-in account's policy: namespace
// permissions apply to browsing exactly as to pulling.
//
// Storage (beside the registry's own layout, see registry/server):
//
//	ui/
//	  session-key   64 hex digits: HMAC-SHA256 key of session cookies and
//	                CSRF tokens, created by the first process to start, so
//	                every replica over the storage accepts the others' cookies
//
// URL space (name is a repository name with its slashes; "-" cannot be a
// name component, so it separates the name from what follows):
//
//	GET  /ui/                                  namespaces
//	GET  /ui/ns/<namespace>                    repositories ("_" = top level)
//	GET  /ui/repo/<name>                       tags
//	GET  /ui/repo/<name>/-/manifests/<ref>     a manifest by tag or digest
//	POST /ui/repo/<name>/-/tags/<tag>/delete   delete a tag (CSRF token)
//	GET  /ui/login, POST /ui/login, POST /ui/logout
//	GET  /ui/static/…                          style.css, app.js
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"berth/errdefs"
	"berth/registry/auth"
	"berth/registry/server"
	"berth/registry/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the UI.
type Options struct {
	Storage  storage.Driver
	Accounts *auth.Accounts
	// Open serves everything to everyone: the registry runs without
	// authentication, so the UI has nothing to sign in to.
	Open bool
	Log  *slog.Logger // nil discards
	// SessionTTL is how long a sign-in lasts (default 8 h).
	SessionTTL time.Duration
	// MaxManifestSize bounds manifests as the API does (0: its default).
	MaxManifestSize int64
	// Events receives the deletes made in the UI, as the API reports them
	// (with the signed-in user as the actor). Page views are not pulls and
	// report nothing.
	Events server.EventSink
	// CatalogTTL is how long the list of repositories is reused between
	// pages (default 5 s; negative: never). Listing walks the whole
	// storage tree, thousands of requests on S3 for a large registry.
	CatalogTTL time.Duration
}

// UI serves /ui/.
type UI struct {
	api      apiClient
	accounts *auth.Accounts
	d        storage.Driver
	open     bool
	log      *slog.Logger
	keys     sessionKeys
	ttl      time.Duration
	pages    map[string]*template.Template
	static   http.Handler
	catalog  catalogCache
	throttle *throttle
}

// New loads (or creates) the session key in storage and parses the
// templates.
func New(ctx context.Context, opts Options) (*UI, error) {
	if opts.Storage == nil {
		return nil, fmt.Errorf("ui: storage required: %w", errdefs.ErrInvalidArgument)
	}
	if !opts.Open && opts.Accounts == nil {
		return nil, fmt.Errorf("ui: accounts required with authentication: %w", errdefs.ErrInvalidArgument)
	}
	u := &UI{accounts: opts.Accounts, d: opts.Storage, open: opts.Open, log: opts.Log, ttl: opts.SessionTTL, throttle: newThrottle()}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.ttl <= 0 {
		u.ttl = 8 * time.Hour
	}
	u.catalog.ttl = opts.CatalogTTL
	if u.catalog.ttl == 0 {
		u.catalog.ttl = 5 * time.Second
	}
	key, err := loadKey(ctx, opts.Storage)
	if err != nil {
		return nil, err
	}
	u.keys = newSessionKeys(key)
	u.pages, err = parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("ui static files: %w", err)
	}
	u.static = http.StripPrefix("/ui/static/", http.FileServerFS(sub))
	var events server.EventSink
	if opts.Events != nil {
		events = deletesOnly{opts.Events}
	}
	// Mirrors stay out of the UI's server: browsing a mirror namespace shows
	// what is cached and never reaches the upstream.
	u.api = apiClient{h: server.New(server.Options{Storage: opts.Storage, Log: u.log, Events: events,
		Authorizer: policy{accounts: opts.Accounts, open: opts.Open}, MaxManifestSize: opts.MaxManifestSize})}
	return u, nil
}

// ServeHTTP routes /ui/ requests.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	p := r.URL.Path
	if p == "/ui" {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
		return
	}
	if strings.HasPrefix(p, "/ui/static/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			u.methodNotAllowed(w, "GET")
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		u.static.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10) // forms are a few fields
	}
	sess, fresh := u.session(r)
	if fresh {
		u.setSession(w, r, sess)
	}
	req := &request{r: r, sess: sess, csrf: u.keys.csrfToken(sess.Nonce)}
	if err := u.route(w, req); err != nil {
		u.renderError(w, req, err)
	}
}

// route dispatches on the path; handlers return errors for renderError.
func (u *UI) route(w http.ResponseWriter, req *request) error {
	r := req.r
	rest := strings.TrimPrefix(r.URL.Path, "/ui/")
	post := r.Method == http.MethodPost
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case rest == "" && get:
		return u.namespaces(w, req)
	case rest == "login" && get:
		return u.loginPage(w, req, "", http.StatusOK)
	case rest == "login" && post:
		return u.login(w, req)
	case rest == "logout" && post:
		return u.logout(w, req)
	case strings.HasPrefix(rest, "ns/") && get:
		return u.repositories(w, req, strings.TrimPrefix(rest, "ns/"))
	case strings.HasPrefix(rest, "repo/"):
		return u.repoRoute(w, req, strings.TrimPrefix(rest, "repo/"))
	case rest == "" || rest == "login" || rest == "logout" || strings.HasPrefix(rest, "ns/"):
		return errMethod
	}
	return notFound("page %s", r.URL.Path)
}

// repoRoute splits "<name>[/-/<what>...]".
func (u *UI) repoRoute(w http.ResponseWriter, req *request, rest string) error {
	name, sub, _ := strings.Cut(rest, "/-/")
	get := req.r.Method == http.MethodGet || req.r.Method == http.MethodHead
	switch {
	case sub == "" && get:
		return u.tags(w, req, name)
	case strings.HasPrefix(sub, "manifests/") && get:
		return u.manifest(w, req, name, strings.TrimPrefix(sub, "manifests/"))
	case strings.HasPrefix(sub, "tags/") && strings.HasSuffix(sub, "/delete"):
		if req.r.Method != http.MethodPost {
			return errMethod
		}
		return u.deleteTag(w, req, name, strings.TrimSuffix(strings.TrimPrefix(sub, "tags/"), "/delete"))
	case sub == "" || strings.HasPrefix(sub, "manifests/"):
		return errMethod
	}
	return notFound("page %s", req.r.URL.Path)
}

func (u *UI) methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// securityHeaders forbid everything the pages do not use: no inline
// script or style, no framing, no foreign origins, so user data that
// slipped through escaping still could not run.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// request is one UI request with its session.
type request struct {
	r    *http.Request
	sess session
	csrf string
}

// uiError is an error page: a status and a message safe to show.
type uiError struct {
	status int
	msg    string
}

func (e *uiError) Error() string { return e.msg }

var errMethod = &uiError{status: http.StatusMethodNotAllowed, msg: "method not allowed"}

func notFound(format string, args ...any) error {
	return &uiError{status: http.StatusNotFound, msg: fmt.Sprintf(format+" not found", args...)}
}

func forbidden(format string, args ...any) error {
	return &uiError{status: http.StatusForbidden, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &uiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// renderError shows an error page. Unexpected errors are logged and shown
// without detail, which could name storage paths.
func (u *UI) renderError(w http.ResponseWriter, req *request, err error) {
	var ue *uiError
	switch {
	case errors.As(err, &ue):
	case errors.Is(err, context.Canceled):
		return // the browser went away
	case errors.Is(err, errdefs.ErrUnavailable):
		u.log.Warn("ui request", "path", req.r.URL.Path, "err", err)
		ue = &uiError{status: http.StatusServiceUnavailable, msg: "storage unavailable; try again"}
	default:
		u.log.Error("ui request", "path", req.r.URL.Path, "err", err)
		ue = &uiError{status: http.StatusInternalServerError, msg: "internal error; see the registry's log"}
	}
	if ue.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, HEAD, POST")
	}
	u.render(w, req, ue.status, "error", errorView{Status: ue.status, StatusText: http.StatusText(ue.status), Message: ue.msg})
}

type errorView struct {
	Status     int
	StatusText string
	Message    string
}

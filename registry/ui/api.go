package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
	"berth/registry/auth"
	"berth/registry/notify"
	"berth/registry/server"
)

// userKey carries the signed-in user from the UI to its in-process API
// server's authorizer, which has only the request to go by.
type userKey struct{}

// policy authorizes the UI's in-process API requests with the accounts'
// policy for the session's user: what the user could pull, push or delete
// with their own credentials, nothing more.
type policy struct {
	accounts *auth.Accounts
	open     bool
}

func (p policy) Authorize(r *http.Request, want []auth.Access) error {
	if p.open {
		return nil
	}
	user, _ := r.Context().Value(userKey{}).(string)
	for _, w := range want {
		if w.Optional {
			continue
		}
		got, err := p.accounts.Allowed(r.Context(), user, w)
		if err != nil {
			return err
		}
		for _, a := range w.Actions {
			if !slices.Contains(got, a) && !slices.Contains(got, "*") {
				return &auth.Error{Status: http.StatusForbidden, Code: "DENIED", Message: "requested access to the resource is denied"}
			}
		}
	}
	return nil
}

// Identity names the session's user, the actor of events the in-process
// API server reports (auth.Identifier).
func (p policy) Identity(r *http.Request) string {
	user, _ := r.Context().Value(userKey{}).(string)
	return user
}

// may reports whether user may perform action on repository name.
func (u *UI) may(ctx context.Context, user, name, action string) (bool, error) {
	if u.open {
		return true, nil
	}
	got, err := u.accounts.Allowed(ctx, user, auth.Access{Type: "repository", Name: name, Actions: []string{action}})
	return slices.Contains(got, action), err
}

// known reports whether the account still exists. Every account owns the
// namespace of its name, so the policy grants it pull there when the
// account exists; removing an account drops its namespace's policy too.
// (Should someone make a removed user's namespace public by hand, the old
// session would say "signed in" while the policy grants it what anonymous
// visitors get: nothing more.) This reads the accounts' short-lived cache
// instead of storage on every page.
func (u *UI) known(ctx context.Context, user string) bool {
	ok, err := u.may(ctx, user, user+"/x", auth.ActionPull)
	return err == nil && ok
}

// deletesOnly passes on the delete events of the UI's API calls: the reads
// behind a page are no pulls, and webhook consumers count pulls.
type deletesOnly struct{ next server.EventSink }

func (f deletesOnly) Notify(events ...notify.Event) {
	kept := events[:0:0]
	for _, ev := range events {
		if ev.Action == notify.ActionDelete {
			kept = append(kept, ev)
		}
	}
	if len(kept) > 0 {
		f.next.Notify(kept...)
	}
}

// caller is on whose behalf, and in answer to which browser request, the
// UI calls the API: the user for the authorizer, the request for what the
// API's events report (client address, host, user agent, request id).
type caller struct {
	user string
	from *http.Request
}

func (req *request) caller() caller { return caller{user: req.sess.User, from: req.r} }

// stamp gives an internal request the browser request's identity, so an
// event names the registry as the browser reached it and the real client.
func (who caller) stamp(r *http.Request) {
	if who.from == nil {
		return
	}
	r.Host, r.RemoteAddr, r.TLS = who.from.Host, who.from.RemoteAddr, who.from.TLS
	for _, h := range []string{"User-Agent", "X-Request-Id", "X-Forwarded-For", "X-Forwarded-Proto"} {
		if v := who.from.Header.Get(h); v != "" {
			r.Header.Set(h, v)
		}
	}
}

// apiClient calls the in-process API server: no sockets, no
// serialisation of the request, the same handlers as /v2/.
type apiClient struct{ h http.Handler }

// apiResponse is a buffered answer.
type apiResponse struct {
	status int
	header http.Header
	body   bytes.Buffer
	limit  int
	over   bool
}

func (w *apiResponse) Header() http.Header { return w.header }
func (w *apiResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// Write keeps at most limit bytes, so a huge blob read as a config cannot
// exhaust memory; the caller sees over and fails.
func (w *apiResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len()+len(b) > w.limit {
		w.over = true
		return 0, fmt.Errorf("response over %d bytes: %w", w.limit, errdefs.ErrInvalidArgument)
	}
	return w.body.Write(b)
}

// do runs method on /v2/<path> as user. Errors of the API become UI errors
// of the same status.
func (c apiClient) do(ctx context.Context, who caller, method, path string, limit int) (*apiResponse, error) {
	req, err := http.NewRequestWithContext(context.WithValue(ctx, userKey{}, who.user), method, "http://registry.invalid/v2/"+path, nil)
	if err != nil {
		return nil, badRequest("invalid path %q", path)
	}
	req.Header.Set("Accept", "*/*")
	who.stamp(req)
	w := &apiResponse{header: http.Header{}, limit: limit}
	c.h.ServeHTTP(w, req)
	if w.over {
		return nil, fmt.Errorf("%s %s: answer over %d bytes: %w", method, path, limit, errdefs.ErrInvalidArgument)
	}
	if w.status >= 300 {
		return nil, apiFailure(w)
	}
	return w, nil
}

// apiFailure turns a spec error body into a UI error.
func apiFailure(w *apiResponse) error {
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	msg := http.StatusText(w.status)
	if json.Unmarshal(w.body.Bytes(), &body) == nil && len(body.Errors) > 0 {
		msg = body.Errors[0].Message
	}
	switch {
	case w.status == http.StatusNotFound, w.status == http.StatusForbidden, w.status == http.StatusBadRequest:
		return &uiError{status: w.status, msg: msg}
	case w.status == http.StatusServiceUnavailable:
		return &uiError{status: w.status, msg: "storage unavailable; try again"}
	}
	return fmt.Errorf("registry api: %d %s: %w", w.status, msg, errdefs.ErrUnavailable)
}

const (
	maxManifest = 4 << 20
	maxConfig   = 8 << 20
)

// tagPage lists up to n tags after last; more reports a further page.
func (c apiClient) tagPage(ctx context.Context, who caller, name, last string, n int) (tags []string, more bool, err error) {
	q := url.Values{"n": {strconv.Itoa(n)}}
	if last != "" {
		q.Set("last", last)
	}
	w, err := c.do(ctx, who, http.MethodGet, name+"/tags/list?"+q.Encode(), 1<<22)
	if err != nil {
		return nil, false, err
	}
	var body struct{ Tags []string }
	if err := json.Unmarshal(w.body.Bytes(), &body); err != nil {
		return nil, false, fmt.Errorf("tags of %s: %w", name, err)
	}
	return body.Tags, w.header.Get("Link") != "", nil
}

// fetchedManifest is a manifest as stored, with its digest and media type.
type fetchedManifest struct {
	digest    digest.Digest
	mediaType string
	raw       []byte
}

func (c apiClient) manifest(ctx context.Context, who caller, name, ref string) (fetchedManifest, error) {
	w, err := c.do(ctx, who, http.MethodGet, name+"/manifests/"+ref, maxManifest)
	if err != nil {
		return fetchedManifest{}, err
	}
	d, err := digest.Parse(w.header.Get("Docker-Content-Digest"))
	if err != nil {
		return fetchedManifest{}, fmt.Errorf("manifest %s:%s: digest header: %w", name, ref, err)
	}
	return fetchedManifest{digest: d, mediaType: w.header.Get("Content-Type"), raw: w.body.Bytes()}, nil
}

// blob reads a small blob (an image config), checking its digest.
func (c apiClient) blob(ctx context.Context, who caller, name string, d digest.Digest) ([]byte, error) {
	w, err := c.do(ctx, who, http.MethodGet, name+"/blobs/"+d.String(), maxConfig)
	if err != nil {
		return nil, err
	}
	if d.Validate() != nil || d.Algorithm().FromBytes(w.body.Bytes()) != d {
		return nil, fmt.Errorf("blob %s: content does not match its digest: %w", d, errdefs.ErrFailedPrecondition)
	}
	return w.body.Bytes(), nil
}

func (c apiClient) referrers(ctx context.Context, who caller, name string, d digest.Digest) ([]ocispec.Descriptor, error) {
	w, err := c.do(ctx, who, http.MethodGet, name+"/referrers/"+d.String(), maxManifest)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(w.body.Bytes(), &idx); err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", name, d, err)
	}
	return idx.Manifests, nil
}

func (c apiClient) deleteTag(ctx context.Context, who caller, name, tag string) error {
	if strings.Contains(tag, ":") || strings.Contains(tag, "/") {
		return badRequest("invalid tag %q", tag)
	}
	_, err := c.do(ctx, who, http.MethodDelete, name+"/manifests/"+tag, 1<<16)
	return err
}

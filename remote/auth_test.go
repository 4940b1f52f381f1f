package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
	"berth/remote/credentials"
)

func TestParseChallenge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:samalba/my-app:pull,push"`,
			"bearer", map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:samalba/my-app:pull,push"}},
		{`Basic realm="Registry Realm"`, "basic", map[string]string{"realm": "Registry Realm"}},
		{`bearer realm=https://a/t, service=x`, "bearer", map[string]string{"realm": "https://a/t", "service": "x"}},
		{`Bearer realm="a \"quoted\" realm"`, "bearer", map[string]string{"realm": `a "quoted" realm`}},
	}
	for _, tt := range tests {
		ch, ok := parseChallenge(tt.in)
		if !ok || ch.scheme != tt.scheme || fmt.Sprint(ch.params) != fmt.Sprint(tt.params) {
			t.Errorf("parseChallenge(%q) = %+v", tt.in, ch)
		}
	}
}

// tokenServer issues opaque tokens: "tok-N" for each grant, recording the
// requests. Password "pw" for user "alice" and refresh token "refresh-1"
// are valid; anonymous callers get pull-only tokens.
type tokenServer struct {
	*httptest.Server
	mu      sync.Mutex
	issued  map[string]string // token -> granted scopes
	revoked map[string]bool
	calls   []string // method + grant or basic user + scopes
	n       int
	fail    int // answer this many requests with 503 first
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{issued: map[string]string{}, revoked: map[string]bool{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.fail > 0 {
		ts.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var who, scopes string
	resp := map[string]any{}
	switch r.Method {
	case http.MethodPost:
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "refresh-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		who, scopes = "refresh", r.PostForm.Get("scope")
	default:
		user, pass, ok := r.BasicAuth()
		switch {
		case ok && user == "alice" && pass == "pw":
			who = "alice"
		case ok:
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED")
			return
		default:
			who = "anon"
		}
		scopes = strings.Join(r.URL.Query()["scope"], " ")
		if r.URL.Query().Get("offline_token") == "true" && who == "alice" {
			resp["refresh_token"] = "refresh-1"
		}
		if r.URL.Query().Get("service") != "test-registry" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	ts.n++
	tok := fmt.Sprintf("tok-%d", ts.n)
	if who == "anon" {
		scopes = strings.ReplaceAll(scopes, "pull,push", "pull")
	}
	ts.issued[tok] = scopes
	ts.calls = append(ts.calls, r.Method+" "+who+" "+scopes)
	resp["access_token"] = tok
	resp["expires_in"] = 300
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// allows reports whether token grants action on repo.
func (ts *tokenServer) allows(token, repo, action string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	scopes, ok := ts.issued[token]
	if !ok || ts.revoked[token] {
		return false
	}
	for _, sc := range strings.Fields(scopes) {
		parts := strings.Split(sc, ":")
		if len(parts) == 3 && parts[1] == repo && strings.Contains(parts[2], action) {
			return true
		}
	}
	return false
}

func (ts *tokenServer) callLog() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.calls...)
}

// bearerRegistry guards fs with token auth against ts.
func bearerRegistry(t *testing.T, ts *tokenServer) *faultServer {
	fs := newFaultServer(t, false)
	fs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v2/" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			return false
		}
		repo := strings.TrimPrefix(r.URL.Path, "/v2/")
		if i := strings.Index(repo, "/manifests/"); i >= 0 {
			repo = repo[:i]
		} else if i := strings.Index(repo, "/blobs/"); i >= 0 {
			repo = repo[:i]
		}
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ts.allows(tok, repo, "pull") {
			return false
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry",scope="repository:%s:pull"`, ts.URL, repo))
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED")
		return true
	}
	return fs
}

func TestBearerFlow(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	fs := bearerRegistry(t, ts)
	cfg := fs.addBlob([]byte("{}"))
	fs.addManifest("v1", ocispec.MediaTypeImageManifest, imageManifest(t, ocispec.MediaTypeImageManifest, cfg))
	c := testClient(t, Options{})
	ctx := context.Background()
	alice := c.Session(staticCreds(credentials.AuthConfig{Username: "alice", Password: "pw"}))
	ref := mustRef(t, fs.host()+"/team/app:v1")
	for range 3 {
		if _, err := alice.Resolve(ctx, ref, ocispec.Platform{}); err != nil {
			t.Fatal(err)
		}
	}
	if calls := ts.callLog(); len(calls) != 1 || calls[0] != "GET alice repository:team/app:pull" {
		t.Fatalf("token requests after 3 resolves: %q, want one (cached)", calls)
	}
	// Another caller's credentials never reuse alice's token.
	anon := c.Session(nil)
	if _, err := anon.Resolve(ctx, ref, ocispec.Platform{}); err != nil {
		t.Fatal(err)
	}
	if calls := ts.callLog(); len(calls) != 2 || calls[1] != "GET anon repository:team/app:pull" {
		t.Fatalf("anonymous session token requests: %q", calls)
	}
	// The registry stops honouring the cached token (expired early):
	// the client asks for a new one and carries on.
	ts.mu.Lock()
	for tok := range ts.issued {
		ts.revoked[tok] = true
	}
	ts.mu.Unlock()
	if _, err := alice.Resolve(ctx, ref, ocispec.Platform{}); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if calls := ts.callLog(); len(calls) != 3 {
		t.Fatalf("expected a fresh token after revocation: %q", calls)
	}
	// An identity token uses the OAuth2 refresh grant.
	idt := c.Session(staticCreds(credentials.AuthConfig{IdentityToken: "refresh-1"}))
	if _, err := idt.Resolve(ctx, ref, ocispec.Platform{}); err != nil {
		t.Fatal(err)
	}
	if calls := ts.callLog(); calls[len(calls)-1] != "POST refresh repository:team/app:pull" {
		t.Fatalf("identity token flow: %q", calls)
	}
	// Bad credentials: the token server refuses.
	bad := c.Session(staticCreds(credentials.AuthConfig{Username: "alice", Password: "nope"}))
	if _, err := bad.Resolve(ctx, ref, ocispec.Platform{}); !errors.Is(err, errdefs.ErrUnauthenticated) || errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("bad password: %v, want unauthenticated only", err)
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	tc := newTokenCache()
	now := timeZero.AddDate(2026, 0, 0)
	tc.put("k", token{value: "v", expires: now.Add(60e9)})
	if v, ok := tc.get("k", now); !ok || v != "v" {
		t.Fatal("fresh token not returned")
	}
	if _, ok := tc.get("k", now.Add(61e9)); ok {
		t.Fatal("expired token returned")
	}
	if _, ok := tc.get("k", now); ok {
		t.Fatal("expired token not dropped")
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	bearer := bearerRegistry(t, ts)
	basic := newFaultServer(t, false)
	basic.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "pw" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED")
		return true
	}
	open := newFaultServer(t, false)
	c := testClient(t, Options{})
	tests := []struct {
		name    string
		host    string
		creds   credentials.AuthConfig
		wantTok string
		wantErr error
	}{
		{"bearer ok", bearer.host(), credentials.AuthConfig{Username: "alice", Password: "pw"}, "refresh-1", nil},
		{"bearer bad", bearer.host(), credentials.AuthConfig{Username: "alice", Password: "x"}, "", errdefs.ErrUnauthenticated},
		{"bearer identity token", bearer.host(), credentials.AuthConfig{IdentityToken: "refresh-1"}, "", nil},
		{"basic ok", "http://" + basic.host() + "/", credentials.AuthConfig{Username: "alice", Password: "pw"}, "", nil},
		{"basic bad", basic.host(), credentials.AuthConfig{Username: "alice", Password: "x"}, "", errdefs.ErrUnauthenticated},
		{"basic anonymous", basic.host(), credentials.AuthConfig{}, "", errdefs.ErrUnauthenticated},
		{"open registry", open.host(), credentials.AuthConfig{Username: "any"}, "", nil},
	}
	for _, tt := range tests {
		tok, err := c.Login(context.Background(), tt.host, tt.creds)
		if (tt.wantErr == nil) != (err == nil) || (err != nil && !errors.Is(err, tt.wantErr)) || errors.Is(err, errdefs.ErrUnavailable) || tok != tt.wantTok {
			t.Errorf("%s: Login = %q, %v; want %q, %v", tt.name, tok, err, tt.wantTok, tt.wantErr)
		}
	}
}

func TestMirrorFallback(t *testing.T) {
	t.Parallel()
	origin := newFaultServer(t, false)
	data := randomBytes(t, 1000)
	desc := origin.addBlob(data)
	cfg := origin.addBlob([]byte("{}"))
	origin.addManifest("v1", ocispec.MediaTypeImageManifest, imageManifest(t, ocispec.MediaTypeImageManifest, cfg, desc))
	broken := newFaultServer(t, false)
	broken.hook = func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return true
	}
	empty := newFaultServer(t, false) // a mirror without the content: 404
	var nsSeen atomic.Value
	nsSeen.Store("")
	empty.hook = func(w http.ResponseWriter, r *http.Request) bool { nsSeen.Store(r.URL.Query().Get("ns")); return false }
	dead := "127.0.0.1:1" // nothing listens: connection refused

	c := testClient(t, Options{Mirrors: []string{dead, "http://" + broken.host(), empty.host()}, MaxRetries: 1})
	s := c.Session(nil)
	ref := mustRef(t, origin.host()+"/app:v1")
	res, err := s.Resolve(context.Background(), ref, ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Parsed.Layers[0].Digest != desc.Digest {
		t.Fatal("wrong manifest")
	}
	if ns := nsSeen.Load().(string); ns != origin.host() {
		t.Errorf("mirror saw ns=%q, want %q", ns, origin.host())
	}
	// A mirror that has the content serves it; the origin is not asked.
	good := newFaultServer(t, false)
	good.addBlob(data)
	s = testClient(t, Options{Mirrors: []string{good.host()}}).Session(nil)
	before := origin.requests.Load()
	rc, err := s.FetchBlob(context.Background(), ref, desc, 0)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if origin.requests.Load() != before {
		t.Error("origin asked although the mirror had the blob")
	}
}

func TestBearerMountScopes(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	fs := newFaultServer(t, false)
	fs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if r.Method == http.MethodPost && ts.allows(tok, "dst/app", "push") && ts.allows(tok, "src/app", "pull") {
			w.WriteHeader(http.StatusCreated)
			return true
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry",scope="repository:dst/app:pull,push"`, ts.URL))
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED")
		return true
	}
	s := testClient(t, Options{}).Session(staticCreds(credentials.AuthConfig{Username: "alice", Password: "pw"}))
	desc := ocispec.Descriptor{Digest: digest.FromString("abc"), Size: 3}
	mounted, err := s.MountBlob(context.Background(), mustRef(t, fs.host()+"/dst/app"), "src/app", desc)
	if err != nil || !mounted {
		t.Fatalf("MountBlob = %v, %v", mounted, err)
	}
	// Both scopes travel as repeated scope parameters of one request.
	if calls := ts.callLog(); len(calls) != 1 || calls[0] != "GET alice repository:dst/app:pull,push repository:src/app:pull" {
		t.Fatalf("token requests: %q", calls)
	}
	// Anonymous callers get pull only: the registry refuses the mount.
	anon := testClient(t, Options{}).Session(nil)
	if _, err := anon.MountBlob(context.Background(), mustRef(t, fs.host()+"/dst/app"), "src/app", desc); !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Fatalf("anonymous mount: %v", err)
	}
}

func TestTokenServerRetry(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	ts.fail = 2
	fs := bearerRegistry(t, ts)
	cfg := fs.addBlob([]byte("{}"))
	fs.addManifest("v1", ocispec.MediaTypeImageManifest, imageManifest(t, ocispec.MediaTypeImageManifest, cfg))
	s := testClient(t, Options{}).Session(nil)
	if _, err := s.Resolve(context.Background(), mustRef(t, fs.host()+"/app:v1"), ocispec.Platform{}); err != nil {
		t.Fatalf("token server recovering from 503: %v", err)
	}
	ts.mu.Lock()
	ts.fail = 100
	ts.mu.Unlock()
	s = testClient(t, Options{MaxRetries: 2}).Session(nil)
	if _, err := s.Resolve(context.Background(), mustRef(t, fs.host()+"/app:v1"), ocispec.Platform{}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("token server down: %v, want unavailable", err)
	}
}

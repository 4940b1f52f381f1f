package ui

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
	"berth/registry/storage/fs"
)

// TestSignIn covers the sign-in form, the cookie's attributes, redirects
// that stay inside the UI, and sign-out.
func TestSignIn(t *testing.T) {
	t.Parallel()
	s := newSite(t, false)
	s.users()
	b := s.browser()
	tok := b.csrf("/ui/login?next=/ui/ns/team")
	p := b.do("POST", "/ui/login", url.Values{"username": {"alice"}, "password": {"wrong"}, "csrf": {tok}})
	p.want(t, "wrong password", 401, []string{"Invalid username or password.", `value="alice"`}, nil)
	p = b.do("POST", "/ui/login", url.Values{"username": {"nobody"}, "password": {"x"}, "csrf": {tok}})
	p.want(t, "unknown user", 401, []string{"Invalid username or password."}, nil)

	p = b.do("POST", "/ui/login", url.Values{"username": {"alice"}, "password": {"alice-pw"}, "csrf": {tok}, "next": {"/ui/ns/team"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/ns/team" {
		t.Fatalf("sign in: %d %q", p.status, p.header.Get("Location"))
	}
	var c *http.Cookie
	for _, sc := range (&http.Response{Header: p.header}).Cookies() {
		if sc.Name == cookieName {
			c = sc
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.MaxAge <= 0 || c.MaxAge > int((8*time.Hour).Seconds()) {
		t.Fatalf("session cookie %+v", c)
	}
	b.get("/ui/").want(t, "signed in", 200, []string{`id="user">alice<`, `id="logout"`}, []string{`id="signin"`})

	tok = b.csrf("/ui/")
	p = b.do("POST", "/ui/logout", url.Values{"csrf": {tok}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	b.get("/ui/").want(t, "signed out", 200, []string{`id="signin"`}, []string{`id="user"`})
	b.get("/ui/repo/alice/x").want(t, "signed out, private", 403, nil, nil)

	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "/v2/", "/ui/\r\nSet-Cookie: x"} {
		tok = b.csrf("/ui/login")
		p = b.do("POST", "/ui/login", url.Values{"username": {"bob"}, "password": {"bob-pw"}, "csrf": {tok}, "next": {next}})
		if p.header.Get("Location") != "/ui/" {
			t.Errorf("next %q: redirected to %q", next, p.header.Get("Location"))
		}
	}
}

// TestSessionCookie: a tampered, expired or foreign-key cookie is
// anonymous; a removed account's session ends; a replica over the same
// storage accepts the cookie.
func TestSessionCookie(t *testing.T) {
	t.Parallel()
	s := newSite(t, false)
	s.fixtures()
	forge := func(sess session) string { return s.ui.keys.encode(sess) }
	valid := forge(session{User: "alice", Nonce: "n1", Expires: time.Now().Add(time.Hour).Unix()})
	payload, sig, _ := strings.Cut(valid, ".")
	other := newSessionKeys(make([]byte, 32)).encode(session{User: "admin", Nonce: "n", Expires: time.Now().Add(time.Hour).Unix()})
	tests := []struct {
		name, cookie string
		signedIn     bool
	}{
		{"valid", valid, true},
		{"expired", forge(session{User: "alice", Nonce: "n", Expires: time.Now().Add(-time.Second).Unix()}), false},
		{"user swapped", swapUser(payload) + "." + sig, false},
		{"no signature", payload, false},
		{"other key", other, false},
		{"garbage", "%%%.###", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url+"/ui/repo/alice/app", nil)
			req.AddCookie(&http.Cookie{Name: cookieName, Value: tc.cookie})
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if got := res.StatusCode == http.StatusOK; got != tc.signedIn {
				t.Errorf("status %d, signed in should be %v", res.StatusCode, tc.signedIn)
			}
		})
	}

	replica := newSiteOn(t, s.d, false)
	b := s.browser()
	b.login("bob", "bob-pw")
	b.base = replica.url
	b.get("/ui/repo/team/tool").want(t, "replica", 200, []string{`id="user">bob<`}, nil)
	if err := s.accounts.Remove(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // the accounts cache lives 2 s
	b.get("/ui/repo/team/tool").want(t, "removed user", 403, []string{"Anonymous visitors"}, []string{`id="user"`})
}

// swapUser rewrites the payload's user without re-signing it.
func swapUser(payload string) string {
	b, _ := base64.RawURLEncoding.DecodeString(payload)
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(b), `"alice"`, `"admin"`, 1)))
}

// TestOpen: without authentication everything is visible, there is no
// sign-in, and deletes still need the CSRF token.
func TestOpen(t *testing.T) {
	t.Parallel()
	s := newSite(t, true)
	s.pushImage("a/b", "v1", "amd64")
	s.pushImage("top", "v1", "amd64")
	b := s.browser()
	b.get("/ui/").want(t, "open index", 200, []string{"open registry", "(top level)", `href="/ui/ns/a"`}, []string{`id="signin"`})
	if p := b.get("/ui/login"); p.status != http.StatusSeeOther {
		t.Errorf("login page in open mode: %d", p.status)
	}
	b.do("POST", "/ui/repo/a/b/-/tags/v1/delete", url.Values{}).want(t, "no token", 403, []string{"CSRF"}, nil)
	tok := b.csrf("/ui/repo/a/b")
	if p := b.do("POST", "/ui/repo/a/b/-/tags/v1/delete", url.Values{"csrf": {tok}}); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %.300s", p.status, p.body)
	}
	if w := s.api("GET", "/v2/a/b/manifests/v1", "", nil); w.Code != http.StatusNotFound {
		t.Errorf("API after delete: %d", w.Code)
	}
	if p := b.get("/ui"); p.status != http.StatusMovedPermanently || p.header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.do("HEAD", "/ui/repo/top", nil); p.status != 200 || p.body != "" {
		t.Errorf("HEAD: %d, %d bytes", p.status, len(p.body))
	}
	for _, path := range []string{"/ui/", "/ui/repo/top", "/ui/repo/top/-/manifests/v1", "/ui/login"} {
		if p := b.do("PUT", path, url.Values{}); p.status != http.StatusMethodNotAllowed {
			t.Errorf("PUT %s: %d", path, p.status)
		}
	}
	for _, f := range []string{"/ui/static/style.css", "/ui/static/app.js"} {
		p := b.get(f)
		if p.status != 200 || len(p.body) < 200 {
			t.Errorf("%s: %d, %d bytes", f, p.status, len(p.body))
		}
	}
}

// TestCatalogCache: the repository list is reused for CatalogTTL, then
// read again.
func TestCatalogCache(t *testing.T) {
	t.Parallel()
	s := newSite(t, true, withUI(func(o *Options) { o.CatalogTTL = 300 * time.Millisecond }))
	s.pushImage("old/one", "v1", "amd64")
	b := s.browser()
	listed := time.Now()
	b.get("/ui/").want(t, "before", 200, []string{`href="/ui/ns/old"`}, []string{`href="/ui/ns/new"`})
	s.pushImage("new/two", "v1", "amd64")
	p := b.get("/ui/")
	// Only when the machine was quick enough to be still within the TTL.
	if time.Since(listed) < 250*time.Millisecond && strings.Contains(p.body, `href="/ui/ns/new"`) {
		t.Error("repository list read again within the TTL")
	}
	time.Sleep(350 * time.Millisecond)
	b.get("/ui/").want(t, "after the TTL", 200, []string{`href="/ui/ns/new"`, `href="/ui/ns/old"`}, nil)
	// A repository's own pages never wait for the list.
	s.pushImage("newer/three", "v1", "amd64")
	b.get("/ui/repo/newer/three").want(t, "new repository's tags", 200, []string{"v1"}, nil)
}

// faulty is the filesystem driver with failures switched on at will, the
// way a storage outage looks to the registry.
type faulty struct {
	storage.Driver
	mu   sync.Mutex
	fail string // operation to fail: "List" or "Get"
}

func (f *faulty) broken(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == op {
		return fmt.Errorf("storage %s: injected outage: %w", op, errdefs.ErrUnavailable)
	}
	return nil
}

func (f *faulty) set(op string) {
	f.mu.Lock()
	f.fail = op
	f.mu.Unlock()
}

func (f *faulty) List(ctx context.Context, p string) ([]string, error) {
	if err := f.broken("List"); err != nil {
		return nil, err
	}
	return f.Driver.List(ctx, p)
}

func (f *faulty) Get(ctx context.Context, p string) ([]byte, error) {
	if err := f.broken("Get"); err != nil && strings.HasPrefix(p, "repositories/") {
		return nil, err
	}
	return f.Driver.Get(ctx, p)
}

// TestStorageOutage: pages answer 503 with a plain message, naming no
// storage path, and work again once storage is back.
func TestStorageOutage(t *testing.T) {
	t.Parallel()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &faulty{Driver: d}
	s := newSiteOn(t, f, true, withUI(func(o *Options) { o.CatalogTTL = -1 }))
	s.pushImage("a/b", "v1", "amd64")
	b := s.browser()
	for _, tc := range []struct{ op, path string }{
		{"List", "/ui/"},
		{"List", "/ui/repo/a/b"},
		{"Get", "/ui/repo/a/b/-/manifests/v1"},
	} {
		f.set(tc.op)
		b.get(tc.path).want(t, tc.op+" "+tc.path, 503, []string{"storage unavailable; try again"}, []string{"injected", "repositories/"})
		f.set("")
		b.get(tc.path).want(t, "recovered "+tc.path, 200, nil, nil)
	}
}

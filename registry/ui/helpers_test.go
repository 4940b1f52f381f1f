package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/registry/auth"
	"berth/registry/server"
	"berth/registry/storage"
	"berth/registry/storage/fs"
)

// xss is planted in every piece of user data a page shows.
const xss = `<script>alert("x")</script><img src=x onerror=alert(1)>`

// site is a registry (/v2/ with Basic auth, or open) and its UI over one
// real filesystem storage, served on loopback.
type site struct {
	t        testing.TB
	d        storage.Driver
	accounts *auth.Accounts
	ui       *UI
	url      string
	seed     http.Handler // the API without auth, to push fixtures
}

func newSite(t testing.TB, open bool, opts ...siteOpt) *site {
	t.Helper()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newSiteOn(t, d, open, opts...)
}

// newSiteOn serves another registry process's view of the same storage.
func newSiteOn(t testing.TB, d storage.Driver, open bool, opts ...siteOpt) *site {
	t.Helper()
	s := &site{t: t, d: d, accounts: auth.NewAccounts(d), seed: server.New(server.Options{Storage: d})}
	var authz auth.Authorizer
	if !open {
		authz = &auth.Basic{Accounts: s.accounts, Realm: "test"}
	}
	var err error
	c := siteConfig{ui: Options{Storage: d, Accounts: s.accounts, Open: open}}
	for _, f := range opts {
		f(&c)
	}
	s.ui, err = New(t.Context(), c.ui)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", server.New(server.Options{Storage: d, Authorizer: authz}))
	mux.Handle("/ui/", s.ui)
	mux.Handle("/ui", s.ui)
	ts := httptest.NewUnstartedServer(mux)
	if c.listener != nil {
		ts.Listener.Close()
		ts.Listener = c.listener
	}
	ts.Start()
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

type siteConfig struct {
	ui       Options
	listener net.Listener
}

type siteOpt func(*siteConfig)

// withUI adjusts the UI's options.
func withUI(f func(*Options)) siteOpt { return func(c *siteConfig) { f(&c.ui) } }

// onListener serves the site on ln (the browser's network namespace).
func onListener(ln net.Listener) siteOpt { return func(c *siteConfig) { c.listener = ln } }

// users creates the accounts every test uses: admin; alice owning a
// private namespace and writing to team; bob reading team; namespace pub
// public.
func (s *site) users() {
	s.t.Helper()
	ctx := s.t.Context()
	for _, u := range []struct {
		name  string
		admin bool
	}{{"admin", true}, {"alice", false}, {"bob", false}} {
		if err := s.accounts.Add(ctx, u.name, u.name+"-pw", u.admin, false); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := s.accounts.SetNamespace(ctx, "team", auth.Namespace{Writers: []string{"alice"}, Readers: []string{"bob"}}); err != nil {
		s.t.Fatal(err)
	}
	if err := s.accounts.SetNamespace(ctx, "pub", auth.Namespace{Public: true}); err != nil {
		s.t.Fatal(err)
	}
}

// api runs a request against the unauthenticated seeding API.
func (s *site) api(method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	s.t.Helper()
	req := httptest.NewRequestWithContext(s.t.Context(), method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	s.seed.ServeHTTP(w, req)
	return w
}

func (s *site) pushBlob(repo string, content []byte) ocispec.Descriptor {
	s.t.Helper()
	d := digest.FromBytes(content)
	w := s.api("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), "application/octet-stream", content)
	if w.Code != http.StatusCreated {
		s.t.Fatalf("push blob to %s: %d %s", repo, w.Code, w.Body)
	}
	return ocispec.Descriptor{Digest: d, Size: int64(len(content))}
}

func (s *site) pushManifest(repo, ref, mediaType string, v any) ocispec.Descriptor {
	s.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	w := s.api("PUT", "/v2/"+repo+"/manifests/"+ref, mediaType, b)
	if w.Code != http.StatusCreated {
		s.t.Fatalf("push manifest %s:%s: %d %s", repo, ref, w.Code, w.Body)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// pushImage pushes a two-layer image whose config carries env, cmd,
// entrypoint, labels and history (labels with markup) and tags it.
func (s *site) pushImage(repo, tag, arch string) ocispec.Descriptor {
	s.t.Helper()
	diffA, diffB := digest.FromString("uncompressed a "+arch), digest.FromString("uncompressed b "+repo+tag)
	cfg := map[string]any{
		"created": "2026-11-02T10:20:30Z", "architecture": arch, "os": "linux",
		"config": map[string]any{
			"Env":        []string{"PATH=/usr/bin:/bin", "GREETING=" + xss},
			"Cmd":        []string{"serve", "--port", "8080"},
			"Entrypoint": []string{"/bin/app"},
			"WorkingDir": "/srv",
			"Labels":     map[string]string{"org.opencontainers.image.title": "demo app", "evil": xss},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffA.String(), diffB.String()}},
		"history": []map[string]any{
			{"created": "2026-11-01T00:00:00Z", "created_by": "ADD rootfs.tar / # " + arch},
			{"created": "2026-11-02T10:20:30Z", "created_by": "ENV GREETING=...", "empty_layer": true},
			{"created": "2026-11-02T10:20:30Z", "created_by": "COPY app /bin/app " + xss},
		},
	}
	cb, _ := json.Marshal(cfg)
	config := s.pushBlob(repo, cb)
	config.MediaType = ocispec.MediaTypeImageConfig
	l1 := s.pushBlob(repo, bytes.Repeat([]byte("a"+arch), 3000))
	l2 := s.pushBlob(repo, bytes.Repeat([]byte("b"+repo+tag), 700))
	l1.MediaType, l2.MediaType = ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerGzip
	m := map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest, "config": config,
		"layers": []ocispec.Descriptor{l1, l2}, "annotations": map[string]string{"note": xss}}
	return s.pushManifest(repo, tag, ocispec.MediaTypeImageManifest, m)
}

// pushIndex pushes a two-platform index with a buildx-style attestation.
func (s *site) pushIndex(repo, tag string) ocispec.Descriptor {
	s.t.Helper()
	amd := s.pushImage(repo, "amd64-"+tag, "amd64")
	arm := s.pushImage(repo, "arm64-"+tag, "arm64")
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	att := s.pushArtifact(repo, "", "application/vnd.in-toto+json", nil)
	att.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	att.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd.Digest.String()}
	idx := map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex, "manifests": []ocispec.Descriptor{amd, arm, att}}
	return s.pushManifest(repo, tag, ocispec.MediaTypeImageIndex, idx)
}

// pushArtifact pushes an artifact manifest (a signature, an SBOM) by
// digest, referring to subject when given.
func (s *site) pushArtifact(repo, ref, artifactType string, subject *ocispec.Descriptor) ocispec.Descriptor {
	s.t.Helper()
	empty := s.pushBlob(repo, []byte("{}"))
	empty.MediaType = ocispec.MediaTypeEmptyJSON
	layer := s.pushBlob(repo, []byte(artifactType+" payload "+fmt.Sprint(subject)))
	layer.MediaType = artifactType
	m := map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest, "artifactType": artifactType,
		"config": empty, "layers": []ocispec.Descriptor{layer},
		"annotations": map[string]string{"org.opencontainers.image.created": "2026-11-03T00:00:00Z", "signer": xss}}
	if subject != nil {
		m["subject"] = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	}
	b, _ := json.Marshal(m)
	if ref == "" {
		ref = digest.FromBytes(b).String()
	}
	return s.pushManifest(repo, ref, ocispec.MediaTypeImageManifest, m)
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, like a browser whose every step the test checks.
type browser struct {
	t    testing.TB
	c    *http.Client
	base string
	host string // Host header override
}

func (s *site) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &browser{t: s.t, base: s.url, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.host != "" {
		req.Host = b.host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{res.StatusCode, res.Header, string(out)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do("GET", path, nil) }

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the token from a page's form.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	p := b.get(path)
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s (%d): %.300s", path, p.status, p.body)
	}
	return m[1]
}

// login signs in through the form and checks the session cookie.
func (b *browser) login(user, password string) {
	b.t.Helper()
	tok := b.csrf("/ui/login")
	p := b.do("POST", "/ui/login", url.Values{"username": {user}, "password": {password}, "csrf": {tok}, "next": {"/ui/"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/" {
		b.t.Fatalf("sign in as %s: %d %s: %.300s", user, p.status, p.header.Get("Location"), p.body)
	}
}

// want checks a page's status, what it must show and what it must not.
func (p page) want(t *testing.T, what string, status int, has []string, hasNot []string) {
	t.Helper()
	if p.status != status {
		t.Errorf("%s: status %d, want %d: %s", what, p.status, status, errorLine(p.body))
	}
	for _, s := range has {
		if !strings.Contains(p.body, s) {
			t.Errorf("%s: page lacks %q", what, s)
		}
	}
	for _, s := range hasNot {
		if strings.Contains(p.body, s) {
			t.Errorf("%s: page shows %q", what, s)
		}
	}
}

var errorLineRe = regexp.MustCompile(`(?s)<nav class="session">(.*?)</nav>.*?(?:id="error">([^<]*)<|$)`)

// errorLine picks the session and error message out of a page for failure
// messages.
func errorLine(body string) string {
	m := errorLineRe.FindStringSubmatch(body)
	if m == nil {
		return fmt.Sprintf("%.300s", body)
	}
	return strings.Join(strings.Fields(m[1]), " ") + " | " + m[2]
}

package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/registry/auth"
	"berth/registry/storage/fs"
	"berth/registry/upstream"
)

// counting wraps an upstream handler, counting requests by method and kind
// and able to go down (connections refused from then on).
type counting struct {
	h    http.Handler
	mu   sync.Mutex
	hits map[string]int
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.hits[r.Method+" "+RouteKind(r.URL.Path)]++
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

func (c *counting) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[key]
}

type mirrorEnv struct {
	*env
	up      *env
	upSrv   *httptest.Server
	counter *counting
}

// newMirrorEnv serves a registry whose namespace "up" mirrors a fresh
// upstream registry, which is also the default mirror.
func newMirrorEnv(t *testing.T, ttl time.Duration, authz auth.Authorizer, cfg upstream.Config, extra http.Handler) *mirrorEnv {
	t.Helper()
	upRoot := t.TempDir()
	d, err := fs.New(upRoot)
	if err != nil {
		t.Fatal(err)
	}
	upSrv := New(Options{Storage: d, Authorizer: authz})
	c := &counting{h: upSrv, hits: map[string]int{}}
	mux := http.NewServeMux()
	mux.Handle("/", c)
	if extra != nil {
		mux.Handle("/token", extra)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	up := &env{t: t, url: ts.URL, root: upRoot, srv: upSrv}
	cfg.URL = ts.URL
	client, err := upstream.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	md, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ms := New(Options{Storage: md, Mirrors: []Mirror{{Namespace: "up", Hosts: []string{client.Host()}, Default: true, TTL: ttl, Upstream: client}}})
	mts := httptest.NewServer(ms)
	t.Cleanup(mts.Close)
	return &mirrorEnv{env: &env{t: t, url: mts.URL, root: root, srv: ms}, up: up, upSrv: ts, counter: c}
}

func TestMirrorPullThrough(t *testing.T) {
	t.Parallel()
	m := newMirrorEnv(t, time.Hour, nil, upstream.Config{}, nil)
	body := m.up.image("lib/app", "mirrored layer")
	d := digest.FromBytes(body)
	m.up.pushManifest("lib/app", "v1", mtOCIManifest, body).want(t, 201, "")
	host := strings.TrimPrefix(m.up.url, "http://")
	// Three ways to name it: the namespace, ?ns= with the upstream's host,
	// and plain (the default mirror).
	for _, path := range []string{"/v2/up/lib/app/manifests/v1", "/v2/lib/app/manifests/v1?ns=" + host, "/v2/lib/app/manifests/v1"} {
		r := m.do("GET", path, nil).want(t, 200, "")
		if !bytes.Equal(r.body, body) || r.header.Get("Docker-Content-Digest") != d.String() || r.header.Get("Content-Type") != mtOCIManifest {
			t.Fatalf("GET %s: %s %v", path, r.body, r.header)
		}
	}
	if !m.pullable("up/lib/app", "v1") || !m.pullable("lib/app", d.String()) {
		t.Fatal("not pullable through the mirror")
	}
	if n := m.counter.count("GET manifest"); n != 1 {
		t.Fatalf("upstream manifest GETs = %d, want 1 (the tag is fresh for an hour)", n)
	}
	blobGets := m.counter.count("GET blob")
	if !m.pullable("up/lib/app", "v1") || m.counter.count("GET blob") != blobGets {
		t.Fatal("a warm pull went upstream")
	}
	// The cache is a repository of the mirror's own storage.
	var cat struct{ Repositories []string }
	m.do("GET", "/v2/_catalog", nil).want(t, 200, "").json(t, &cat)
	if len(cat.Repositories) != 1 || cat.Repositories[0] != "up/lib/app" {
		t.Fatalf("catalog %v", cat.Repositories)
	}
	// Range reads of a blob not cached yet work too.
	l := manifestRefs(body).blobs[1]
	m.up.pushManifest("lib/other", "v1", mtOCIManifest, m.up.image("lib/other", "0123456789")).want(t, 201, "")
	ol := manifestRefs(m.up.do("GET", "/v2/lib/other/manifests/v1", nil).body).blobs[1]
	r := m.do("GET", "/v2/up/lib/other/blobs/"+ol.String(), nil, "Range", "bytes=2-4").want(t, 206, "")
	if string(r.body) != "234" {
		t.Fatalf("range through the mirror: %q", r.body)
	}
	m.do("HEAD", "/v2/up/lib/app/blobs/"+l.String(), nil).want(t, 200, "")
	m.do("GET", "/v2/up/lib/app/blobs/"+digest.FromString("nope").String(), nil).want(t, 404, codeBlobUnknown)
	m.do("GET", "/v2/up/lib/app/manifests/nope", nil).want(t, 404, codeManifestUnknown)
	var tags struct{ Tags []string }
	m.do("GET", "/v2/up/lib/app/tags/list", nil).want(t, 200, "").json(t, &tags)
	if len(tags.Tags) != 1 || tags.Tags[0] != "v1" {
		t.Fatalf("tags %v", tags.Tags)
	}
}

func TestMirrorOwnNamespaces(t *testing.T) {
	t.Parallel()
	m := newMirrorEnv(t, time.Hour, nil, upstream.Config{}, nil)
	// Pushes to the mirror's namespace are refused, with or without ?ns=.
	m.do("POST", "/v2/up/lib/app/blobs/uploads/", nil).want(t, 405, codeUnsupported)
	m.do("PUT", "/v2/up/lib/app/manifests/v1", []byte("{}")).want(t, 405, codeUnsupported)
	m.do("DELETE", "/v2/lib/app/manifests/v1?ns="+strings.TrimPrefix(m.up.url, "http://"), nil).want(t, 405, codeUnsupported)
	// Own repositories take pushes and are read locally, even though the
	// default mirror would take names nobody pushed here.
	body := m.image("mine/app", "local layer")
	m.pushManifest("mine/app", "v1", mtOCIManifest, body).want(t, 201, "")
	if !m.pullable("mine/app", "v1") || m.counter.count("GET manifest") != 0 {
		t.Fatal("own repository not served locally")
	}
	m.do("GET", "/v2/other/app/manifests/v1", nil).want(t, 404, codeManifestUnknown)
	if m.counter.count("GET manifest") != 1 {
		t.Fatal("an unknown name did not go to the default mirror")
	}
}

func TestMirrorMovingTagAndUpstreamDown(t *testing.T) {
	t.Parallel()
	const ttl = time.Second
	m := newMirrorEnv(t, ttl, nil, upstream.Config{Timeout: 2 * time.Second}, nil)
	v1 := m.up.image("lib/app", "first")
	m.up.pushManifest("lib/app", "latest", mtOCIManifest, v1).want(t, 201, "")
	m.up.pushManifest("lib/app", "gone", mtOCIManifest, v1).want(t, 201, "")
	for _, tag := range []string{"latest", "gone"} {
		if !m.pullable("up/lib/app", tag) {
			t.Fatal("first pull")
		}
	}
	v2 := m.up.image("lib/app", "second")
	m.up.pushManifest("lib/app", "latest", mtOCIManifest, v2).want(t, 201, "")
	m.up.do("DELETE", "/v2/lib/app/manifests/gone", nil).want(t, 202, "")
	// Within the TTL the old one is served, then the new one.
	if r := m.do("GET", "/v2/up/lib/app/manifests/latest", nil); !bytes.Equal(r.body, v1) {
		t.Fatal("tag revalidated before its TTL")
	}
	time.Sleep(ttl)
	heads := m.counter.count("HEAD manifest")
	if r := m.do("GET", "/v2/up/lib/app/manifests/latest", nil); !bytes.Equal(r.body, v2) {
		t.Fatal("moved tag not followed after the TTL")
	}
	if m.counter.count("HEAD manifest") != heads+1 {
		t.Fatal("revalidation did not HEAD the upstream")
	}
	m.do("GET", "/v2/up/lib/app/manifests/gone", nil).want(t, 404, codeManifestUnknown)
	if !m.pullable("up/lib/app", "latest") {
		t.Fatal("second pull")
	}
	// Upstream down: cached tags, digests and blobs are still served; the
	// stale tag says so.
	m.upSrv.Close()
	time.Sleep(ttl)
	r := m.do("GET", "/v2/up/lib/app/manifests/latest", nil).want(t, 200, "")
	if !bytes.Equal(r.body, v2) || !strings.Contains(r.header.Get("Warning"), "cached") {
		t.Fatalf("stale tag with upstream down: %v", r.header)
	}
	if !m.pullable("up/lib/app", "latest") || !m.pullable("up/lib/app", digest.FromBytes(v1).String()) {
		t.Fatal("cache not served with the upstream down")
	}
	r = m.do("GET", "/v2/up/lib/app/manifests/never-pulled", nil).want(t, 502, "UNKNOWN")
	if !strings.Contains(string(r.body), "upstream") {
		t.Fatalf("error for an uncached tag with the upstream down: %s", r.body)
	}
	var tags struct{ Tags []string }
	m.do("GET", "/v2/up/lib/app/tags/list", nil).want(t, 200, "").json(t, &tags)
	if len(tags.Tags) != 1 || tags.Tags[0] != "latest" {
		t.Fatalf("cached tags with the upstream down: %v", tags.Tags)
	}
}

func TestMirrorSharesDownloads(t *testing.T) {
	t.Parallel()
	m := newMirrorEnv(t, time.Hour, nil, upstream.Config{}, nil)
	big := bytes.Repeat([]byte("shared download "), 1<<16)
	d := m.up.pushBlob("lib/big", big)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := http.Get(m.url + "/v2/up/lib/big/blobs/" + d.String())
			if err != nil {
				bad.Add(1)
				return
			}
			defer res.Body.Close()
			var got bytes.Buffer
			if _, err := got.ReadFrom(res.Body); err != nil || res.StatusCode != 200 || !bytes.Equal(got.Bytes(), big) {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d concurrent pulls failed", bad.Load())
	}
	if n := m.counter.count("GET blob"); n > 2 {
		t.Fatalf("upstream served the blob %d times for 8 concurrent pulls", n)
	}
	if got := m.do("GET", "/v2/up/lib/big/blobs/"+d.String(), nil).body; !bytes.Equal(got, big) {
		t.Fatal("cached blob differs")
	}
}

func TestMirrorTokenAuthUpstream(t *testing.T) {
	t.Parallel()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	acc := auth.NewAccounts(d)
	if err := acc.Add(t.Context(), "bot", "bot-pw", false, false); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(t.Context(), d, acc, auth.TokenConfig{Service: "up", Issuer: "up"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"credentials", "bot", "bot-pw", 200},
		{"wrong password", "bot", "nope", 502},
		{"anonymous", "", "", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMirrorEnv(t, time.Hour, tokens, upstream.Config{Username: tc.user, Password: tc.pass}, tokens)
			// Seeded through an open server over the upstream's storage.
			seed := newEnvAt(t, m.up.root)
			seed.pushManifest("bot/app", "v1", mtOCIManifest, seed.image("bot/app", "private")).want(t, 201, "")
			m.do("GET", "/v2/up/bot/app/manifests/v1", nil).want(t, tc.want, "")
			if tc.want == 200 && !m.pullable("up/bot/app", "v1") {
				t.Fatal("blobs through token auth")
			}
		})
	}
}

package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/registry/notify"
)

// fixtures: alice/app (image "v1", index "multi" with a signature and an
// SBOM referring to it), team/tool:v1, pub/hello:latest, top-level
// secret:v1 (admins only).
type fixtures struct {
	app, multi ocispec.Descriptor
	sig, sbom  ocispec.Descriptor
}

func (s *site) fixtures() fixtures {
	s.t.Helper()
	s.users()
	var f fixtures
	f.app = s.pushImage("alice/app", "v1", "amd64")
	f.multi = s.pushIndex("alice/app", "multi")
	f.sig = s.pushArtifact("alice/app", "", "application/vnd.dev.cosign.artifact.sig.v1+json", &f.multi)
	f.sbom = s.pushArtifact("alice/app", "", "application/spdx+json", &f.multi)
	s.pushImage("team/tool", "v1", "amd64")
	s.pushImage("pub/hello", "latest", "amd64")
	s.pushImage("secret", "v1", "amd64")
	return f
}

// TestAccess checks what each role sees and may do, page by page: nothing
// a role may not pull appears anywhere, existence included.
func TestAccess(t *testing.T) {
	t.Parallel()
	s := newSite(t, false)
	f := s.fixtures()
	as := map[string]*browser{"anon": s.browser()}
	for _, u := range []string{"admin", "alice", "bob"} {
		as[u] = s.browser()
		as[u].login(u, u+"-pw")
	}
	tests := []struct {
		who, path   string
		status      int
		has, hasNot []string
	}{
		{"anon", "/ui/", 200, []string{`href="/ui/ns/pub"`, `id="signin"`}, []string{"alice", "team", "secret", "(top level)"}},
		{"anon", "/ui/ns/pub", 200, []string{"pub/hello"}, nil},
		{"anon", "/ui/ns/alice", 200, []string{"No repositories you may see here."}, []string{"alice/app"}},
		{"anon", "/ui/repo/pub/hello", 200, []string{"latest", "image"}, []string{">Delete<"}},
		{"anon", "/ui/repo/alice/app", 403, []string{"Anonymous visitors may not view tags in repository alice/app.", "Sign in"}, []string{"multi", f.app.Digest.Encoded()[:12]}},
		{"anon", "/ui/repo/alice/nothing-here", 403, []string{"may not view tags"}, nil},
		{"anon", "/ui/repo/alice/app/-/manifests/v1", 403, []string{"may not view manifests"}, []string{f.app.Digest.String()}},
		{"anon", "/ui/repo/alice/app/-/manifests/" + f.app.Digest.String(), 403, nil, []string{"demo app"}},
		{"bob", "/ui/", 200, []string{`href="/ui/ns/team"`, `href="/ui/ns/pub"`, `id="user">bob<`}, []string{"/ui/ns/alice", "(top level)"}},
		{"bob", "/ui/repo/team/tool", 200, []string{"v1", "Copy pull"}, []string{">Delete<"}},
		{"bob", "/ui/repo/alice/app", 403, []string{"Your account (bob) may not view tags in repository alice/app."}, []string{"multi"}},
		{"bob", "/ui/ns/_", 200, []string{"No repositories you may see here."}, []string{"secret"}},
		{"alice", "/ui/", 200, []string{`href="/ui/ns/alice"`, `href="/ui/ns/team"`, `href="/ui/ns/pub"`}, []string{"(top level)"}},
		{"alice", "/ui/repo/alice/app", 200, []string{">Delete<", "multi", "linux/amd64, linux/arm64/v8", "v1"}, nil},
		{"alice", "/ui/repo/team/tool", 200, []string{"v1"}, []string{">Delete<"}},
		{"admin", "/ui/", 200, []string{"(top level)", `href="/ui/ns/alice"`, `href="/ui/ns/team"`}, nil},
		{"admin", "/ui/ns/_", 200, []string{`href="/ui/repo/secret"`}, nil},
		{"admin", "/ui/repo/secret", 200, []string{">Delete<", `<a href="/ui/ns/_">(top level)</a>`}, nil},
		{"admin", "/ui/repo/alice/app/-/manifests/nope", 404, []string{"manifest alice/app:nope unknown"}, nil},
		{"admin", "/ui/repo/nobody/here", 404, []string{"repository nobody/here unknown"}, nil},
		{"admin", "/ui/repo/Bad..Name", 404, []string{"not found"}, nil},
		{"admin", "/ui/elsewhere", 404, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.who+tc.path, func(t *testing.T) {
			as[tc.who].get(tc.path).want(t, tc.who+" "+tc.path, tc.status, tc.has, tc.hasNot)
		})
	}
}

// TestManifestPage shows an image's layers, sizes, config and history, an
// index's platforms and referrers, with every piece of user data escaped.
func TestManifestPage(t *testing.T) {
	t.Parallel()
	s := newSite(t, false)
	f := s.fixtures()
	b := s.browser()
	b.host = "registry.example:5443" // the browser's cookies follow the host it reached
	b.login("alice", "alice-pw")

	img := b.get("/ui/repo/alice/app/-/manifests/v1")
	img.want(t, "image", 200, []string{
		f.app.Digest.String(), "linux/amd64", "2026-11-02 10:20:30 UTC",
		`id="layers"`, "ADD rootfs.tar / # amd64", `title="diff ID ` + digest.FromString("uncompressed a amd64").String(), `id="size"`, plus(ocispec.MediaTypeImageLayerGzip),
		`[&#34;/bin/app&#34;]`, `[&#34;serve&#34;,&#34;--port&#34;,&#34;8080&#34;]`, "/srv", "PATH=/usr/bin:/bin",
		"org.opencontainers.image.title", "demo app", "ENV GREETING=...", "empty",
		"docker pull registry.example:5443/alice/app:v1", "docker pull registry.example:5443/alice/app@" + f.app.Digest.String(),
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, `id="no-referrers"`, `id="delete"`,
	}, []string{xss, "<script>alert", "<img src=x"})

	idx := b.get("/ui/repo/alice/app/-/manifests/multi")
	idx.want(t, "index", 200, []string{
		`id="platforms"`, "linux/amd64", "linux/arm64/v8", "attestation-manifest for sha256:",
		`id="referrers"`, plus("application/vnd.dev.cosign.artifact.sig.v1+json"), plus("application/spdx+json"),
		"/ui/repo/alice/app/-/manifests/" + f.sig.Digest.String(), "org.opencontainers.image.created",
		`&lt;script&gt;`,
	}, []string{xss, "<script>alert", "<img src=x"})

	// Each platform's size is its image's (config and layers), read from
	// the child manifest, not the child manifest's own size.
	var child struct {
		Config ocispec.Descriptor
		Layers []ocispec.Descriptor
	}
	w := s.api("GET", "/v2/alice/app/manifests/arm64-multi", "", nil)
	if err := json.Unmarshal(w.Body.Bytes(), &child); err != nil {
		t.Fatal(err)
	}
	armSize := child.Config.Size
	for _, l := range child.Layers {
		armSize += l.Size
	}
	if !regexp.MustCompile(`linux/arm64/v8</td>\s*<td class="num" title="` + fmt.Sprint(armSize) + ` bytes">` + regexp.QuoteMeta(humanSize(armSize)) + `</td>\s*<td class="nowrap">2026-11-02 10:20:30 UTC</td>`).MatchString(idx.body) {
		t.Errorf("index: arm64 row lacks the image size %d", armSize)
	}
	b.get("/ui/repo/alice/app").want(t, "tags", 200, []string{"linux/amd64, linux/arm64/v8", "2026-11-02 10:20:30 UTC",
		`<td>linux/arm64</td>`, `title="` + fmt.Sprint(armSize) + ` bytes"`}, []string{"<script>alert"})

	sig := b.get("/ui/repo/alice/app/-/manifests/" + f.sig.Digest.String())
	sig.want(t, "signature", 200, []string{"artifact", plus("application/vnd.dev.cosign.artifact.sig.v1+json"),
		"/ui/repo/alice/app/-/manifests/" + f.multi.Digest.String(), "not an image config"},
		[]string{`id="delete"`, "<script>alert"})
	for _, p := range []page{img, idx, sig} {
		csp := p.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
		if p.header.Get("Cache-Control") != "no-store" || p.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("headers %v", p.header)
		}
	}
}

// TestDeleteTag deletes through the UI and checks the API no longer has
// the tag; a reader gets a 403 page and the tag stays.
func TestDeleteTag(t *testing.T) {
	t.Parallel()
	var events recorder
	s := newSite(t, false, withUI(func(o *Options) { o.Events = &events }))
	s.fixtures()
	s.pushImage("team/tool", "v2", "arm64")
	bob, alice, admin := s.browser(), s.browser(), s.browser()
	bob.login("bob", "bob-pw")
	alice.login("alice", "alice-pw")
	admin.login("admin", "admin-pw")

	tok := bob.csrf("/ui/repo/team/tool")
	bob.do("POST", "/ui/repo/team/tool/-/tags/v1/delete", url.Values{"csrf": {tok}}).
		want(t, "reader deletes", 403, []string{"Your account (bob) may not delete tags in repository team/tool."}, nil)
	tok = alice.csrf("/ui/repo/alice/app")
	alice.do("POST", "/ui/repo/team/tool/-/tags/v1/delete", url.Values{"csrf": {tok}}).
		want(t, "writer deletes", 403, []string{"may not delete tags"}, nil)
	admin.get("/ui/repo/team/tool").want(t, "after refused deletes", 200, []string{"/ui/repo/team/tool/-/manifests/v1"}, nil)

	tok = admin.csrf("/ui/repo/team/tool")
	p := admin.do("POST", "/ui/repo/team/tool/-/tags/v1/delete", url.Values{"csrf": {tok}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/repo/team/tool?deleted=v1" {
		t.Fatalf("delete: %d %q %.300s", p.status, p.header.Get("Location"), p.body)
	}
	admin.get("/ui/repo/team/tool?deleted=v1").want(t, "after delete", 200, []string{`id="notice"`, "<code>v1</code> deleted"},
		[]string{"/ui/repo/team/tool/-/manifests/v1"})
	if w := s.api("GET", "/v2/team/tool/tags/list", "", nil); w.Code != 200 || strings.Contains(w.Body.String(), `"v1"`) {
		t.Errorf("API tags after delete: %d %s", w.Code, w.Body)
	}
	if w := s.api("GET", "/v2/team/tool/manifests/v1", "", nil); w.Code != http.StatusNotFound {
		t.Errorf("API manifest v1 after delete: %d", w.Code)
	}
	// One event: the delete, by admin, as the browser made it; page views
	// are not pulls.
	got := events.take()
	if len(got) != 1 || got[0].Action != notify.ActionDelete || got[0].Target.Repository != "team/tool" || got[0].Target.Tag != "v1" ||
		got[0].Actor.Name != "admin" || "http://"+got[0].Request.Host != s.url || !strings.HasPrefix(got[0].Request.Addr, "127.0.0.1:") {
		t.Errorf("events: %+v", got)
	}
	admin.do("POST", "/ui/repo/team/tool/-/tags/v1/delete", url.Values{"csrf": {tok}}).
		want(t, "delete again", 404, []string{"manifest team/tool:v1 unknown"}, nil)
	admin.get("/ui/repo/team/tool/-/tags/v2/delete").want(t, "GET delete", 405, nil, nil)
}

// TestCSRF refuses state changes without the session's token or from
// another site.
func TestCSRF(t *testing.T) {
	t.Parallel()
	s := newSite(t, false)
	s.fixtures()
	admin, other := s.browser(), s.browser()
	admin.login("admin", "admin-pw")
	other.login("alice", "alice-pw")
	good := admin.csrf("/ui/repo/pub/hello")
	foreign := other.csrf("/ui/repo/pub/hello")
	tests := []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"no token", url.Values{}, nil},
		{"empty token", url.Values{"csrf": {""}}, nil},
		{"garbage token", url.Values{"csrf": {"AAAA"}}, nil},
		{"another session's token", url.Values{"csrf": {foreign}}, nil},
		{"cross-site fetch", url.Values{"csrf": {good}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"foreign origin", url.Values{"csrf": {good}}, []string{"Origin", "https://evil.example"}},
	}
	for _, tc := range tests {
		p := admin.do("POST", "/ui/repo/pub/hello/-/tags/latest/delete", tc.form, tc.hdr...)
		p.want(t, tc.name, 403, nil, nil)
		if !strings.Contains(p.body, "CSRF") && !strings.Contains(p.body, "cross-") {
			t.Errorf("%s: unclear message %.300s", tc.name, p.body)
		}
	}
	if w := s.api("GET", "/v2/pub/hello/manifests/latest", "", nil); w.Code != 200 {
		t.Fatalf("tag gone after refused deletes: %d", w.Code)
	}
	// The same token, same-origin, passes.
	p := admin.do("POST", "/ui/repo/pub/hello/-/tags/latest/delete", url.Values{"csrf": {good}},
		"Origin", s.url, "Sec-Fetch-Site", "same-origin")
	if p.status != http.StatusSeeOther {
		t.Fatalf("good delete: %d %.300s", p.status, p.body)
	}
	// Sign-out and sign-in are CSRF-checked too.
	admin.do("POST", "/ui/logout", url.Values{}).want(t, "logout without token", 403, nil, nil)
	anon := s.browser()
	anon.get("/ui/login")
	anon.do("POST", "/ui/login", url.Values{"username": {"admin"}, "password": {"admin-pw"}}).want(t, "login without token", 403, nil, nil)
}

// TestPaging pages through a large namespace and a repository's tags.
func TestPaging(t *testing.T) {
	t.Parallel()
	s := newSite(t, true)
	const repos = 120
	for i := range repos {
		s.pushImage(fmt.Sprintf("big/r%03d", i), "v1", "amd64")
	}
	for i := range 7 {
		s.pushImage("big/r000", fmt.Sprintf("t%d", i), "amd64")
	}
	b := s.browser()
	seen, path := map[string]bool{}, "/ui/ns/big"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		p := b.get(path)
		p.want(t, path, 200, nil, nil)
		for _, m := range repoLinkRe.FindAllStringSubmatch(p.body, -1) {
			if seen[m[1]] {
				t.Errorf("%s listed twice", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := nextRe.FindStringSubmatch(p.body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != repos {
		t.Errorf("saw %d repositories over the pages, want %d", len(seen), repos)
	}
	b.get("/ui/ns/big?n=500").want(t, "n=500", 200, []string{"big/r119"}, []string{`id="next"`})
	b.get("/ui/ns/big?q=r11").want(t, "filter", 200, []string{"big/r110", "big/r119"}, []string{"big/r109", `id="next"`})
	p := b.get("/ui/repo/big/r000?n=3")
	p.want(t, "tags page 1", 200, []string{">t0<", ">t2<", `id="next"`}, []string{">t3<", ">v1<"})
	p = b.get("/ui/repo/big/r000?n=3&last=t5")
	p.want(t, "tags last page", 200, []string{">t6<", ">v1<"}, []string{">t5<", `id="next"`})
}

// recorder is an event sink keeping what it gets.
type recorder struct {
	mu     sync.Mutex
	events []notify.Event
}

func (r *recorder) Notify(evs ...notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
}

func (r *recorder) take() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// plus is s as html/template writes it in text ("+" as "&#43;").
func plus(s string) string { return strings.ReplaceAll(s, "+", "&#43;") }

var (
	repoLinkRe = regexp.MustCompile(`href="/ui/repo/([^"]+)"`)
	nextRe     = regexp.MustCompile(`id="next" href="([^"]+)"`)
)

package integration

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestRegistryUI pushes an image with the berth engine to `berth registry
// serve` (Basic auth), signs in to the web UI of the same process, finds the
// image's layer, config and pull command there, deletes the tag through the
// UI, and sees the engine's pull fail.
func TestRegistryUI(t *testing.T) {
	t.Parallel()
	reg := startBerthRegistry(t, "basic", map[string]string{"alice": "alice-secret", "bob": "bob-secret"})
	d := startDaemon(t)
	ref := reg + "/alice/busybox:v1"
	id := d.importBusybox(ref)
	layer := shortDiffID(t, d, id)
	if r := d.berthIn(strings.NewReader("alice-secret\n"), "login", "-u", "alice", "--password-stdin", reg); r.Code != 0 {
		t.Fatalf("login: %s", r)
	}
	d.must("push", ref)

	ui := newUIClient(t, "http://"+reg)
	ui.signIn("bob", "bob-secret")
	if status, body := ui.get("/ui/repo/alice/busybox"); status != http.StatusForbidden || strings.Contains(body, "manifests/v1") {
		t.Fatalf("bob on alice's private repository: %d", status)
	}

	ui = newUIClient(t, "http://"+reg)
	ui.signIn("alice", "alice-secret")
	status, body := ui.get("/ui/repo/alice/busybox/-/manifests/v1")
	if status != http.StatusOK {
		t.Fatalf("manifest page: %d %.300s", status, body)
	}
	for _, want := range []string{"docker pull " + reg + "/alice/busybox:v1", `id="layers"`, layer[:12], `id="cmd">[&#34;sh&#34;]`, "linux/"} {
		if !strings.Contains(body, want) {
			t.Errorf("manifest page lacks %q", want)
		}
	}
	m := regexp.MustCompile(`action="/ui/repo/alice/busybox/-/tags/v1/delete"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no delete form for alice's own tag")
	}
	if status, _ := ui.post("/ui/repo/alice/busybox/-/tags/v1/delete", url.Values{"csrf": {m[1]}}); status != http.StatusSeeOther {
		t.Fatalf("delete through the UI: %d", status)
	}
	d.must("rmi", ref)
	if r := d.berth("pull", ref); r.Code == 0 || !strings.Contains(r.Stderr, "not found") {
		t.Fatalf("pull of the deleted tag: %s", r)
	}
}

type uiClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newUIClient(t *testing.T, base string) *uiClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &uiClient{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (u *uiClient) send(req *http.Request) (int, string) {
	u.t.Helper()
	res, err := u.c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		u.t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func (u *uiClient) get(path string) (int, string) {
	u.t.Helper()
	req, err := http.NewRequestWithContext(u.t.Context(), "GET", u.base+path, nil)
	if err != nil {
		u.t.Fatal(err)
	}
	return u.send(req)
}

func (u *uiClient) post(path string, form url.Values) (int, string) {
	u.t.Helper()
	req, err := http.NewRequestWithContext(u.t.Context(), "POST", u.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return u.send(req)
}

func (u *uiClient) signIn(user, password string) {
	u.t.Helper()
	_, body := u.get("/ui/login")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		u.t.Fatalf("no sign-in form: %.300s", body)
	}
	if status, body := u.post("/ui/login", url.Values{"csrf": {m[1]}, "username": {user}, "password": {password}}); status != http.StatusSeeOther {
		u.t.Fatalf("sign in as %s: %d %.300s", user, status, body)
	}
}

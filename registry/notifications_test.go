package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
	"berth/registry/auth"
	"berth/registry/notify"
	"berth/registry/storage/fs"
)

// hook is a webhook receiver on loopback recording every event in order;
// with block set it holds every POST until the test ends.
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []notify.Event
	ctype  string
}

func newHook(t *testing.T, block bool) *hook {
	h := &hook{}
	release := make(chan struct{})
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if block {
			<-release
			return
		}
		var env notify.Envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			t.Errorf("envelope: %v", err)
		}
		h.mu.Lock()
		h.events = append(h.events, env.Events...)
		h.ctype = r.Header.Get("Content-Type")
		h.mu.Unlock()
	}))
	t.Cleanup(func() { close(release); h.srv.Close() })
	return h
}

func (h *hook) wait(t *testing.T, n int) []notify.Event {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		h.mu.Lock()
		evs := h.events
		h.mu.Unlock()
		if len(evs) >= n {
			return evs
		}
	}
	t.Fatalf("webhook got %d events, want %d", len(h.events), n)
	return nil
}

// notifyingRegistry serves a registry in basic mode (users alice and root)
// that notifies ep.
func notifyingRegistry(t *testing.T, ep EndpointConfig) string {
	t.Helper()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	acc := auth.NewAccounts(d)
	for _, u := range []string{"alice", "root"} {
		if err := acc.Add(t.Context(), u, u+"-pw", u == "root", false); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.Auth.Mode = "basic"
	cfg.Notifications.Endpoints = []EndpointConfig{ep}
	h, err := NewHandler(t.Context(), cfg, d, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h.Close(ctx)
	})
	return ts.URL
}

// TestNotificationsEveryAction: each action reaches the webhook once, in
// order, with its target, request, actor and source.
func TestNotificationsEveryAction(t *testing.T) {
	t.Parallel()
	hk := newHook(t, false)
	url := notifyingRegistry(t, EndpointConfig{Name: "hook", URL: hk.srv.URL})
	alice, root := basicHdr("alice"), basicHdr("root")
	must := func(status int, method, path string, body []byte, hdr ...string) *http.Response {
		t.Helper()
		res := call(t, method, url+path, body, append(hdr, "User-Agent", "notify-test/1")...)
		if res.StatusCode != status {
			b, _ := io.ReadAll(res.Body)
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		return res
	}
	layer, cfgBlob := []byte("layer bytes"), []byte(`{"os":"linux"}`)
	ld, cd := digest.FromBytes(layer), digest.FromBytes(cfgBlob)
	must(201, "POST", "/v2/alice/app/blobs/uploads/?digest="+ld.String(), layer, alice...)
	loc := must(202, "POST", "/v2/alice/app/blobs/uploads/", nil, alice...).Header.Get("Location")
	loc = must(202, "PATCH", loc, cfgBlob, append(alice, "Content-Range", fmt.Sprintf("0-%d", len(cfgBlob)-1))...).Header.Get("Location")
	must(201, "PUT", loc+"?digest="+cd.String(), nil, alice...)
	must(201, "POST", "/v2/alice/copy/blobs/uploads/?mount="+ld.String()+"&from=alice/app", nil, alice...)
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		cd, len(cfgBlob), ld, len(layer))
	md := digest.FromBytes(m)
	must(201, "PUT", "/v2/alice/app/manifests/v1", m, append(alice, "Content-Type", "application/vnd.oci.image.manifest.v1+json")...)
	must(200, "HEAD", "/v2/alice/app/manifests/v1", nil, alice...)
	must(200, "GET", "/v2/alice/app/manifests/v1", nil, alice...)
	must(200, "HEAD", "/v2/alice/app/blobs/"+ld.String(), nil, alice...)
	must(200, "GET", "/v2/alice/app/blobs/"+ld.String(), nil, alice...)
	must(202, "DELETE", "/v2/alice/app/manifests/v1", nil, alice...)
	must(202, "DELETE", "/v2/alice/app/manifests/"+md.String(), nil, alice...)
	must(202, "DELETE", "/v2/alice/app/blobs/"+ld.String(), nil, alice...)
	must(202, "DELETE", "/api/v1/repositories/alice/copy", nil, root...)

	const mt, blob = "application/vnd.oci.image.manifest.v1+json", "application/octet-stream"
	want := []struct {
		action, repo, mediaType, tag, from string
		d                                  digest.Digest
		size                               int64
		method, actor                      string
	}{
		{"push", "alice/app", blob, "", "", ld, int64(len(layer)), "POST", "alice"},
		{"push", "alice/app", blob, "", "", cd, int64(len(cfgBlob)), "PUT", "alice"},
		{"mount", "alice/copy", blob, "", "alice/app", ld, int64(len(layer)), "POST", "alice"},
		{"push", "alice/app", mt, "v1", "", md, int64(len(m)), "PUT", "alice"},
		{"pull", "alice/app", mt, "v1", "", md, int64(len(m)), "GET", "alice"},
		{"pull", "alice/app", blob, "", "", ld, int64(len(layer)), "GET", "alice"},
		{"delete", "alice/app", "", "v1", "", "", 0, "DELETE", "alice"},
		{"delete", "alice/app", mt, "", "", md, 0, "DELETE", "alice"},
		{"delete", "alice/app", blob, "", "", ld, 0, "DELETE", "alice"},
		{"delete", "alice/copy", "", "", "", "", 0, "DELETE", "root"},
	}
	got := hk.wait(t, len(want))
	time.Sleep(100 * time.Millisecond) // nothing more arrives (HEAD is no pull)
	if got = hk.wait(t, len(want)); len(got) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(want), got)
	}
	if hk.ctype != notify.EventsMediaType {
		t.Errorf("content type %q", hk.ctype)
	}
	host := strings.TrimPrefix(url, "http://")
	for i, w := range want {
		e := got[i]
		tg := e.Target
		if e.Action != w.action || tg.Repository != w.repo || tg.MediaType != w.mediaType || tg.Tag != w.tag ||
			tg.FromRepository != w.from || tg.Digest != w.d || tg.Size != w.size || e.Request.Method != w.method || e.Actor.Name != w.actor {
			t.Errorf("event %d = %s %+v by %q (%s), want %+v", i, e.Action, tg, e.Actor.Name, e.Request.Method, w)
		}
		if e.ID == "" || e.Request.ID == "" || e.Request.UserAgent != "notify-test/1" || e.Request.Host != host || e.Source.InstanceID == "" {
			t.Errorf("event %d: id %q request %+v source %+v", i, e.ID, e.Request, e.Source)
		}
		if w.d != "" && w.action != "delete" {
			kind := "blobs"
			if w.mediaType == mt {
				kind = "manifests"
			}
			if u := "http://" + host + "/v2/" + w.repo + "/" + kind + "/" + w.d.String(); tg.URL != u {
				t.Errorf("event %d url %q, want %q", i, tg.URL, u)
			}
		}
	}
}

// TestSlowWebhookDoesNotBlockPushes: with the endpoint never answering,
// pushes go on; the bounded queue drops the overflow and /metrics says so.
func TestSlowWebhookDoesNotBlockPushes(t *testing.T) {
	t.Parallel()
	hk := newHook(t, true)
	url := notifyingRegistry(t, EndpointConfig{Name: "stuck", URL: hk.srv.URL, QueueSize: 8, Timeout: Duration(time.Hour)})
	const pushes = 100
	for i := range pushes {
		b := []byte(strconv.Itoa(i))
		if res := call(t, "POST", url+"/v2/alice/app/blobs/uploads/?digest="+digest.FromBytes(b).String(), b, basicHdr("alice")...); res.StatusCode != 201 {
			t.Fatalf("push %d: %d", i, res.StatusCode)
		}
	}
	res := call(t, "GET", url+"/metrics", nil)
	body, _ := io.ReadAll(res.Body)
	metric := func(re string) int {
		m := regexp.MustCompile(re + ` (\d+)`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in\n%s", re, body)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	dropped := metric(`berth_registry_notification_events_total\{endpoint="stuck",outcome="dropped"\}`)
	queued := metric(`berth_registry_notification_queue_length\{endpoint="stuck"\}`)
	delivered := metric(`berth_registry_notification_events_total\{endpoint="stuck",outcome="delivered"\}`)
	if dropped == 0 || dropped+queued != pushes || delivered != 0 {
		t.Fatalf("dropped %d, queued %d, delivered %d of %d", dropped, queued, delivered, pushes)
	}
}

func TestNotificationsConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, json, want string }{
		{"no url", `{"notifications":{"endpoints":[{"name":"a"}]}}`, "url"},
		{"bad action", `{"notifications":{"endpoints":[{"name":"a","url":"http://h/","ignore":{"actions":["fetch"]}}]}}`, `action "fetch"`},
		{"bad timeout", `{"notifications":{"endpoints":[{"name":"a","url":"http://h/","timeout":"soon"}]}}`, "duration"},
		{"unknown field", `{"notifications":{"endpoints":[{"name":"a","url":"http://h/","retries":3}]}}`, "unknown field"},
	} {
		p := filepath.Join(t.TempDir(), "c.json")
		if err := os.WriteFile(p, []byte(tc.json), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(p)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	p := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(p, []byte(`{"notifications":{"endpoints":[{"name":"a","url":"https://hooks.example/registry","headers":{"Authorization":["Bearer x"]},
		"timeout":"2s","threshold":5,"backoff":"500ms","maxBackoff":"1m","queueSize":100,"ignore":{"actions":["pull"],"mediaTypes":["application/octet-stream"]}}]}}`), 0o600)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	ep := cfg.notifyConfig().Endpoints[0]
	if ep.Timeout != 2*time.Second || ep.Threshold != 5 || ep.QueueSize != 100 || ep.Headers.Get("Authorization") != "Bearer x" || ep.IgnoredActions[0] != "pull" {
		t.Fatalf("parsed %+v", ep)
	}
}

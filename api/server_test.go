package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"berth/api"
	"berth/api/apitest"
	"berth/image"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

var testNow = time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)

const (
	busyboxID  = "sha256:341b535792115afd2ca1b76e7a4a4d2a5e8a6ba83c5ca9d7d5d0ffb1c1e5accd"
	danglingID = "sha256:cc63b1657c52aa8e8ae3f7b2f62e3b4e77a1e5b1a2f76f38a4e1d3a1b2c3d4e5"
)

func fixture() (*apitest.Images, *apitest.System) {
	imgs := apitest.NewImages(func() time.Time { return testNow },
		apitest.Image{
			Summary: imagetypes.Summary{ID: busyboxID, RepoTags: []string{"busybox:latest", "127.0.0.1:5000/ns/busybox:latest"},
				RepoDigests: []string{}, Created: testNow.Add(-12 * time.Minute).Unix(), Size: 2_050_000, Containers: -1, SharedSize: -1,
				Labels: map[string]string{"tier": "base"}},
			Inspect: image.InspectResponse{InspectResponse: imagetypes.InspectResponse{Architecture: "amd64", Os: "linux"}, Parent: "sha256:00"},
			History: []imagetypes.HistoryResponseItem{{ID: busyboxID, Created: testNow.Add(-12 * time.Minute).Unix(), CreatedBy: "/bin/sh", Size: 2_050_000}},
		},
		apitest.Image{
			Summary: imagetypes.Summary{ID: danglingID, RepoTags: []string{}, RepoDigests: []string{},
				Created: testNow.Add(-time.Hour).Unix(), Size: 6, Containers: -1, SharedSize: -1},
		},
	)
	return imgs, &apitest.System{Images: imgs, InfoDoc: system.Info{ID: "berth-test", Driver: "overlay2", OSType: "linux"}}
}

func newHandler(t *testing.T) (http.Handler, *apitest.Images) {
	t.Helper()
	imgs, sys := fixture()
	return api.New(api.Options{Images: imgs, System: sys, Version: api.VersionInfo{Version: "0.1.0", Os: "linux", Arch: "amd64"}}), imgs
}

func do(t *testing.T, h http.Handler, method, target string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, body))
	return rec
}

func TestRouting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, target string
		status         int
		body           string // substring of the response body
	}{
		{"GET", "/_ping", 200, "OK"},
		{"GET", "/v1.51/version", 200, `"ApiVersion":"1.51"`},
		{"GET", "/v1.24/version", 200, `"MinAPIVersion":"1.24"`},
		{"GET", "/v1.11/version", 400, `{"message":"client version 1.11 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"}`},
		{"GET", "/v1.99/version", 400, `{"message":"client version 1.99 is too new. Maximum supported API version is 1.51"}`},
		{"GET", "/info", 200, `"ID":"berth-test"`},
		{"GET", "/v1.50/images/json", 200, `"busybox:latest"`},
		{"GET", "/images/json?filters=" + `{"dangling":["true"]}`, 200, danglingID},
		{"GET", "/images/json?filters=" + `{"dangling":{"true":true}}`, 200, danglingID},
		{"GET", "/images/json?filters=notjson", 400, `"message":"filters`},
		{"GET", "/v1.40/images/json?filter=busy*", 200, `"RepoTags":["busybox:latest"]`},
		{"GET", "/v1.50/images/127.0.0.1:5000/ns/busybox:latest/json", 200, `"Architecture":"amd64"`},
		{"GET", "/images/341b535/json", 200, busyboxID},
		{"GET", "/images/json/json", 404, `{"message":"No such image: json"}`},
		{"GET", "/images/busybox/history", 200, `"CreatedBy":"/bin/sh"`},
		{"GET", "/images/nope:1/history", 404, `No such image: nope:1`},
		{"DELETE", "/images/341b535", 409, `conflict: unable to delete 341b53579211 (must be forced) - image is referenced in multiple repositories`},
		{"DELETE", "/images/busybox", 200, `[{"Untagged":"busybox:latest"}]`},
		{"DELETE", "/v1.51/images/127.0.0.1:5000/ns/busybox:latest", 200, `[{"Untagged":"127.0.0.1:5000/ns/busybox:latest"}]`},
		{"DELETE", "/images/busybox/json", 404, `{"message":"No such image: busybox/json"}`},
		{"POST", "/images/127.0.0.1:5000/ns/busybox/tag?repo=x", 201, ""},
		{"POST", "/images/busybox/tag?repo=example/x&tag=v1", 201, ""},
		{"POST", "/images/busybox/tag", 400, `repository name must have at least one component`},
		{"POST", "/images/create?fromImage=busybox", 501, `pulling from a registry`},
		{"POST", "/images/create", 400, `fromSrc or fromImage is required`},
		{"GET", "/containers/json", 404, `{"message":"page not found"}`},
		{"PUT", "/images/json", 404, `{"message":"page not found"}`},
		{"GET", "/v1.51/system/df", 200, `"LayersSize":2050006`},
		{"GET", "/v1.52/system/df", 400, `too new`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			t.Parallel()
			h, _ := newHandler(t)
			rec := do(t, h, tt.method, tt.target, nil)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.body) {
				t.Fatalf("body = %s, want it to contain %s", rec.Body, tt.body)
			}
			if got := rec.Header().Get("Api-Version"); got != "1.51" {
				t.Errorf("Api-Version = %q", got)
			}
			if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("error Content-Type = %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestPingHeaders(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t)
	for _, method := range []string{"GET", "HEAD"} {
		rec := do(t, h, method, "/_ping", nil)
		want := map[string]string{
			"Api-Version": "1.51", "Ostype": "linux", "Docker-Experimental": "false", "Builder-Version": "1",
			"Swarm": "inactive", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
			"Server": "berth/0.1.0 (linux)",
		}
		for k, v := range want {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s %s = %q, want %q", method, k, got, v)
			}
		}
		wantBody := map[string]string{"GET": "OK", "HEAD": ""}[method]
		if rec.Code != 200 || rec.Body.String() != wantBody {
			t.Errorf("%s /_ping = %d %q", method, rec.Code, rec.Body)
		}
	}
}

func TestPruneDanglingFalseMeansAll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filters string
		deleted int
		status  int
	}{
		{"", 1, 200},
		{`{"dangling":["true"]}`, 1, 200},
		{`{"dangling":["false"]}`, 2, 200},
		{`{"dangling":{"false":true}}`, 2, 200},
		{`{"dangling":["maybe"]}`, 0, 400},
	}
	for _, tt := range tests {
		t.Run(tt.filters, func(t *testing.T) {
			t.Parallel()
			h, _ := newHandler(t)
			rec := do(t, h, "POST", "/images/prune?filters="+tt.filters, nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if tt.status != 200 {
				return
			}
			var rep imagetypes.PruneReport
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			var deleted int
			for _, d := range rep.ImagesDeleted {
				if d.Deleted != "" {
					deleted++
				}
			}
			if deleted != tt.deleted {
				t.Errorf("deleted %d images, want %d: %+v", deleted, tt.deleted, rep)
			}
		})
	}
}

func TestImportStream(t *testing.T) {
	t.Parallel()
	h, imgs := newHandler(t)
	target := "/v1.51/images/create?fromSrc=-&repo=example/imported&tag=v2&message=hello&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3Db&platform=linux/amd64"
	rec := do(t, h, "POST", target, strings.NewReader("layer bytes"))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	const want = `{"status":"sha256:` // then the id and "\r\n"
	if body := rec.Body.String(); !strings.HasPrefix(body, want) || !strings.HasSuffix(body, "\"}\r\n") {
		t.Fatalf("body = %q", body)
	}
	got := imgs.Imports[0]
	if got.Ref != "example/imported:v2" || got.Message != "hello" || got.Source != "-" || got.Platform != "linux/amd64" ||
		len(got.Changes) != 2 || got.Changes[0] != `CMD ["sh"]` || got.Changes[1] != "ENV A=b" {
		t.Errorf("import options = %+v", got)
	}
	// A failure before anything was streamed keeps its own status.
	rec = do(t, h, "POST", "/images/create?fromSrc=-", strings.NewReader(""))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"message":"import: empty archive"`) {
		t.Fatalf("empty import = %d %s", rec.Code, rec.Body)
	}
}

func TestVersionComponents(t *testing.T) {
	t.Parallel()
	imgs, sys := fixture()
	h := api.New(api.Options{Images: imgs, System: sys, Version: api.VersionInfo{Version: "0.1.0", Components: []system.ComponentVersion{
		{Name: "Engine", Version: "stale", Details: map[string]string{"ApiVersion": "1.40"}},
		{Name: "runc", Version: "1.1.5"},
	}}})
	rec := do(t, h, "GET", "/version", nil)
	var v system.VersionResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range v.Components {
		names = append(names, c.Name+"="+c.Version)
	}
	if strings.Join(names, ",") != "Engine=0.1.0,runc=1.1.5" || v.Components[0].Details["ApiVersion"] != "1.51" {
		t.Fatalf("components = %v %v", names, v.Components[0].Details)
	}
}

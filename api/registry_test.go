package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"berth/api"
	"berth/api/apitest"
	"berth/errdefs"
	"berth/image"
	"berth/remote/credentials"
)

func newRegistryHandler(reg *apitest.Registry) http.Handler {
	imgs, sys := fixture()
	return api.New(api.Options{Images: imgs, System: sys, Distribution: reg, Auth: reg})
}

func TestPullStream(t *testing.T) {
	t.Parallel()
	auth, _ := credentials.EncodeHeader(credentials.AuthConfig{Username: "alice", Password: "pw", ServerAddress: "127.0.0.1:5000"})
	tests := []struct {
		name     string
		target   string
		header   string
		progress []image.Progress
		err      error
		status   int
		body     string // exact, when the backend wrote nothing
		lines    []string
		wantName string
		wantAll  bool
		wantPlat string
	}{
		{
			name: "tag", target: "/v1.51/images/create?fromImage=127.0.0.1:5000/ns/app&tag=v1", header: auth,
			progress: []image.Progress{{ID: "v1", Status: "Pulling from ns/app", Message: true}, {ID: "abc", Status: "Downloading", Current: 5, Total: 10}, {Status: "Digest: sha256:x"}},
			status:   200, wantName: "127.0.0.1:5000/ns/app:v1",
			lines: []string{
				`{"status":"Pulling from ns/app","id":"v1"}`,
				`{"status":"Downloading","progressDetail":{"current":5,"total":10},"id":"abc"}`,
				`{"status":"Digest: sha256:x"}`,
			},
		},
		{name: "digest", target: "/images/create?fromImage=r.example/app&tag=sha256:" + strings.Repeat("a", 64), status: 200,
			wantName: "r.example/app@sha256:" + strings.Repeat("a", 64)},
		{name: "all tags", target: "/images/create?fromImage=r.example/app", status: 200, wantName: "r.example/app", wantAll: true},
		{name: "tag in fromImage", target: "/images/create?fromImage=r.example/app:v2", status: 200, wantName: "r.example/app:v2"},
		{name: "json platform", target: "/images/create?fromImage=r.example/app&tag=v1&platform=" + url.QueryEscape(`{"os":"linux","architecture":"arm64","variant":"v8"}`),
			status: 200, wantName: "r.example/app:v1", wantPlat: "linux/arm64/v8"},
		{name: "failure before output is an HTTP error", target: "/images/create?fromImage=r.example/app&tag=nope",
			err:    errdefs.Errorf(errdefs.ErrNotFound, "manifest for r.example/app:nope not found: manifest unknown: manifest unknown"),
			status: 404, body: `{"message":"manifest for r.example/app:nope not found: manifest unknown: manifest unknown"}` + "\n", wantName: "r.example/app:nope"},
		{name: "failure mid-stream", target: "/images/create?fromImage=r.example/app&tag=v1",
			progress: []image.Progress{{ID: "v1", Status: "Pulling from app"}},
			err:      errdefs.Errorf(errdefs.ErrInvalidArgument, "layer sha256:1: content digest does not match"),
			status:   200, wantName: "r.example/app:v1",
			lines: []string{
				`{"status":"Pulling from app","progressDetail":{},"id":"v1"}`,
				`{"errorDetail":{"message":"layer sha256:1: content digest does not match"},"error":"layer sha256:1: content digest does not match"}`,
			},
		},
		{name: "bad auth header", target: "/images/create?fromImage=r.example/app&tag=v1", header: "!!!", status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := &apitest.Registry{Progress: tt.progress, Err: tt.err}
			req, _ := http.NewRequest(http.MethodPost, tt.target, nil)
			if tt.header != "" {
				req.Header.Set("X-Registry-Auth", tt.header)
			}
			rec := doRequest(newRegistryHandler(reg), req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 400 {
				return
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Errorf("body %q, want %q", rec.Body, tt.body)
			}
			if tt.lines != nil {
				got := strings.Split(strings.TrimSuffix(rec.Body.String(), "\r\n"), "\r\n")
				if strings.Join(got, "\n") != strings.Join(tt.lines, "\n") {
					t.Errorf("stream:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.lines, "\n"))
				}
			}
			if len(reg.Pulls) != 1 {
				t.Fatalf("pulls: %+v", reg.Pulls)
			}
			c := reg.Pulls[0]
			if c.Name != tt.wantName || c.Opts.AllTags != tt.wantAll || c.Opts.Platform != tt.wantPlat {
				t.Errorf("backend got %q %+v", c.Name, c.Opts)
			}
			if tt.header != "" && (c.Opts.Auth.Username != "alice" || c.Opts.Auth.ServerAddress != "127.0.0.1:5000") {
				t.Errorf("auth not passed on: %+v", c.Opts.Auth)
			}
		})
	}
}

func doRequest(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPushStream(t *testing.T) {
	t.Parallel()
	reg := &apitest.Registry{Progress: []image.Progress{
		{Status: "The push refers to repository [r.example/app]"},
		{ID: "89b4dde58de1", Status: "Pushed"},
		{Status: "v1: digest: sha256:6fc7 size: 735", Aux: &image.PushResult{Tag: "v1", Digest: "sha256:6fc7", Size: 735}},
	}}
	h := newRegistryHandler(reg)
	req, _ := http.NewRequest(http.MethodPost, "/v1.51/images/r.example/app/push?tag=v1", nil)
	rec := doRequest(h, req)
	want := strings.Join([]string{
		`{"status":"The push refers to repository [r.example/app]"}`,
		`{"status":"Pushed","progressDetail":{},"id":"89b4dde58de1"}`,
		`{"status":"v1: digest: sha256:6fc7 size: 735"}`,
		`{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:6fc7","Size":735}}`,
	}, "\r\n") + "\r\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("%d\n%s\nwant\n%s", rec.Code, rec.Body, want)
	}
	req, _ = http.NewRequest(http.MethodPost, "/images/r.example/app/push", nil)
	doRequest(h, req)
	if len(reg.Pushes) != 2 || reg.Pushes[0].Name != "r.example/app" || reg.Pushes[0].Opts.Tag != "v1" || reg.Pushes[0].Opts.AllTags ||
		!reg.Pushes[1].Opts.AllTags {
		t.Fatalf("pushes: %+v", reg.Pushes)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	reg := &apitest.Registry{Users: map[string]string{"alice": "secret"}, Token: "refresh-me"}
	h := newRegistryHandler(reg)
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"good", `{"username":"alice","password":"secret","serveraddress":"127.0.0.1:5001"}`, 200,
			`{"IdentityToken":"refresh-me","Status":"Login Succeeded"}` + "\n"},
		{"auth field", `{"auth":"YWxpY2U6c2VjcmV0","serveraddress":"127.0.0.1:5001"}`, 200,
			`{"IdentityToken":"refresh-me","Status":"Login Succeeded"}` + "\n"},
		{"wrong password", `{"username":"alice","password":"nope","serveraddress":"127.0.0.1:5001"}`, 401,
			`{"message":"login attempt to http://127.0.0.1:5001/v2/ failed with status: 401 Unauthorized"}` + "\n"},
		{"remote registry", `{"username":"alice","password":"nope","serveraddress":"registry.example:5000"}`, 401,
			`{"message":"login attempt to https://registry.example:5000/v2/ failed with status: 401 Unauthorized"}` + "\n"},
		{"not json", `{`, 400, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, "/v1.51/auth", strings.NewReader(tt.body))
		rec := doRequest(h, req)
		if rec.Code != tt.status || (tt.want != "" && rec.Body.String() != tt.want) {
			t.Errorf("%s: %d %s, want %d %s", tt.name, rec.Code, rec.Body, tt.status, tt.want)
		}
	}
	var di struct {
		Descriptor struct{ Digest string }
		Platforms  []struct{ Architecture string }
	}
	req, _ := http.NewRequest(http.MethodGet, "/distribution/r.example/app:v1/json", nil)
	rec := doRequest(h, req)
	if err := json.Unmarshal(rec.Body.Bytes(), &di); err != nil || rec.Code != 200 || len(di.Platforms) != 1 {
		t.Fatalf("distribution: %d %s", rec.Code, rec.Body)
	}
}

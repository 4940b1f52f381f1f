package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth/registry/storage/fs"
)

// env is a registry served over loopback by a real fs backend.
type env struct {
	t    *testing.T
	url  string
	root string
	srv  *Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	return newEnvAt(t, root)
}

// newEnvAt serves another registry process's view of the same storage.
func newEnvAt(t *testing.T, root string) *env {
	t.Helper()
	d, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Storage: d, MaxManifestSize: 64 << 10})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &env{t: t, url: ts.URL, root: root, srv: s}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path string, body []byte, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(u, "http") {
		u = e.url + path
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// want checks the status and, for errors, the spec error code.
func (r resp) want(t *testing.T, status int, code string) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if code != "" {
		var eb errorBody
		if err := json.Unmarshal(r.body, &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Code != code {
			t.Fatalf("error body %s, want code %s", r.body, code)
		}
	}
	return r
}

// pushBlob uploads content monolithically to repo.
func (e *env) pushBlob(repo string, content []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(content)
	e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content).want(e.t, 201, "")
	return d
}

func (e *env) pushManifest(repo, ref, mediaType string, body []byte) resp {
	e.t.Helper()
	return e.do("PUT", "/v2/"+repo+"/manifests/"+ref, body, "Content-Type", mediaType)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// image pushes a config and one layer and returns an OCI manifest over them.
func (e *env) image(repo string, layer string) []byte {
	e.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := e.pushBlob(repo, cfg)
	ld := e.pushBlob(repo, []byte(layer))
	return mustJSON(e.t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": len(layer)}},
	})
}

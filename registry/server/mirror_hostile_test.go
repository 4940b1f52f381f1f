package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/registry/storage/fs"
	"berth/registry/upstream"
)

// hostile is an upstream that answers each repository in its own broken way.
func hostile(t *testing.T, stop <-chan struct{}) http.Handler {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2},"layers":[]}`)
	good := digest.FromBytes(manifest)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
		if len(parts) < 3 {
			w.WriteHeader(200)
			return
		}
		switch parts[0] {
		case "lying-digest": // a manifest that is not what its header says
			w.Header().Set("Content-Type", mtOCIManifest)
			w.Header().Set("Docker-Content-Digest", digest.FromString("other").String())
			w.Write(manifest)
		case "not-json":
			w.Header().Set("Content-Type", mtOCIManifest)
			w.Write([]byte("<html>maintenance</html>"))
		case "wrong-type":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(`{"schemaVersion":2,"mediaType":"text/plain"}`))
		case "swapped": // asked by digest, answers another manifest
			w.Header().Set("Content-Type", mtOCIManifest)
			w.Write(manifest)
		case "huge":
			w.Header().Set("Content-Type", mtOCIManifest)
			w.Header().Set("Content-Length", fmt.Sprint(64<<20))
			w.WriteHeader(200)
		case "bad-blob": // bytes that do not match the digest
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("wrong"))
		case "short-blob": // announces more than it sends
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("short"))
		case "slow":
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		case "stalls": // headers at once, then nothing
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		case "throttled":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		case "broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.Header().Set("Docker-Content-Digest", good.String())
			w.WriteHeader(404)
		}
	})
}

// TestMirrorHostileUpstream: every kind of bad answer gives the client a
// precise 502 (or a body it detects as short or wrong), quickly, and leaves
// nothing in the cache.
func TestMirrorHostileUpstream(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	ts := httptest.NewServer(hostile(t, stop))
	t.Cleanup(func() { close(stop); ts.Close() })
	client, err := upstream.New(upstream.Config{URL: ts.URL, Timeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	d, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	mts := httptest.NewServer(New(Options{Storage: d, Mirrors: []Mirror{{Namespace: "up", Upstream: client}}}))
	t.Cleanup(mts.Close)
	e := &env{t: t, url: mts.URL, root: root}
	blob := digest.FromString("right").String()
	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/v2/up/lying-digest/x/manifests/v1", 502, "content has digest"},
		{"/v2/up/not-json/x/manifests/v1", 502, "not a schema 2 manifest"},
		{"/v2/up/wrong-type/x/manifests/v1", 502, "unsupported media type"},
		{"/v2/up/swapped/x/manifests/" + digest.FromString("asked").String(), 502, "content has digest"},
		{"/v2/up/huge/x/manifests/v1", 502, "over the"},
		{"/v2/up/slow/x/manifests/v1", 502, "timeout"},
		{"/v2/up/throttled/x/manifests/v1", 502, "throttled (429)"},
		{"/v2/up/broken/x/manifests/v1", 502, "status 500"},
		{"/v2/up/missing/x/manifests/v1", 404, "MANIFEST_UNKNOWN"},
		{"/v2/up/slow/x/blobs/" + blob, 502, "timeout"},
		{"/v2/up/throttled/x/blobs/" + blob, 502, "throttled"},
		{"/v2/up/missing/x/blobs/" + blob, 404, "BLOB_UNKNOWN"},
	} {
		start := time.Now()
		r := e.do("GET", tc.path, nil)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.msg) {
			t.Errorf("GET %s: %d %s; want %d with %q", tc.path, r.status, r.body, tc.status, tc.msg)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("GET %s took %s", tc.path, time.Since(start))
		}
	}
	// Streamed blobs: the status is out before the bytes prove wrong; the
	// client sees a short or wrong body, and nothing is cached.
	for _, repo := range []string{"bad-blob", "short-blob", "stalls"} {
		res, err := http.Get(mts.URL + "/v2/up/" + repo + "/x/blobs/" + blob)
		if err == nil {
			b := make([]byte, 200)
			n, _ := res.Body.Read(b)
			res.Body.Close()
			if res.StatusCode == 200 && digest.FromBytes(b[:n]).String() == blob {
				t.Errorf("%s: the client got a body matching the digest", repo)
			}
		}
	}
	for _, dir := range []string{"blobs", "repositories"} {
		if _, err := os.Stat(filepath.Join(root, dir)); !os.IsNotExist(err) {
			t.Errorf("something was cached under %s: %v", dir, err)
		}
	}
}

package registry

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/registry/storage/fs"
)

// roundRobin is a load balancer on loopback sending each request to the
// next backend, without stickiness.
func roundRobin(t *testing.T, backends []string) string {
	t.Helper()
	var next atomic.Uint64
	proxies := make([]*httputil.ReverseProxy, len(backends))
	for i, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
	}
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[next.Add(1)%uint64(len(proxies))].ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)
	return lb.URL
}

// TestReplicasShareMirrorCache: three registry handlers over one storage
// mirroring one upstream, behind a round-robin balancer. Concurrent pulls
// through the balancer all get the right bytes and fill one cache: once
// the upstream is gone, every replica serves the image from it.
func TestReplicasShareMirrorCache(t *testing.T) {
	t.Parallel()
	var blobGets sync.Map // digest -> *atomic.Int64: blob GETs the upstream served
	upD, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	upH, err := NewHandler(t.Context(), DefaultConfig(), upD, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, d, ok := strings.Cut(r.URL.Path, "/blobs/"); ok && r.Method == http.MethodGet {
			n, _ := blobGets.LoadOrStore(d, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
		upH.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	layers := pushImage(t, up.URL, "lib/app", "v1", 3)

	root := t.TempDir()
	var replicas []string
	for range 3 {
		d, err := fs.New(root)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.Mirrors = []MirrorConfig{{Namespace: "up", URL: up.URL, TTL: Duration(time.Second)}}
		h, err := NewHandler(t.Context(), cfg, d, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		replicas = append(replicas, srv.URL)
	}
	lb := roundRobin(t, replicas)

	const clients = 6
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pullImage(lb, "up/lib/app", "v1", layers); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	blobGets.Range(func(d, n any) bool {
		t.Logf("upstream served blob %.19s %d times for %d pulls over 3 replicas", d, n.(*atomic.Int64).Load(), clients)
		return true
	})

	up.Close()
	time.Sleep(1100 * time.Millisecond) // past the tag's TTL: replicas try the upstream, then serve the cache
	for _, r := range replicas {
		if err := pullImage(r, "up/lib/app", "v1", layers); err != nil {
			t.Errorf("replica %s with the upstream down: %v", r, err)
		}
	}
}

// pushImage pushes an image of n random layers (plus its config) and
// returns the blobs by digest.
func pushImage(t *testing.T, base, repo, tag string, n int) map[digest.Digest][]byte {
	t.Helper()
	blobs := map[digest.Digest][]byte{}
	var descs []string
	for i := range n + 1 {
		b := make([]byte, 64<<10)
		rand.Read(b)
		d := digest.FromBytes(b)
		blobs[d] = b
		if res := call(t, "POST", base+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b); res.StatusCode != 201 {
			t.Fatalf("push blob: %d", res.StatusCode)
		}
		if i > 0 {
			descs = append(descs, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, d, len(b)))
			continue
		}
		descs = append(descs, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d}`, d, len(b)))
	}
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}`,
		descs[0], strings.Join(descs[1:], ","))
	if res := call(t, "PUT", base+"/v2/"+repo+"/manifests/"+tag, m, "Content-Type", "application/vnd.oci.image.manifest.v1+json"); res.StatusCode != 201 {
		t.Fatalf("push manifest: %d", res.StatusCode)
	}
	return blobs
}

// pullImage fetches the manifest and every blob, checking their bytes.
func pullImage(base, repo, tag string, blobs map[digest.Digest][]byte) error {
	get := func(path string) ([]byte, error) {
		res, err := http.Get(base + path)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != 200 {
			err = fmt.Errorf("GET %s: %d %s", path, res.StatusCode, b)
		}
		return b, err
	}
	m, err := get("/v2/" + repo + "/manifests/" + tag)
	if err != nil {
		return err
	}
	for d, want := range blobs {
		if !bytes.Contains(m, []byte(d.String())) {
			return fmt.Errorf("manifest lacks %s", d)
		}
		got, err := get("/v2/" + repo + "/blobs/" + d.String())
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("blob %s: wrong bytes", d)
		}
	}
	return nil
}

package s3

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/registry/server"
)

// TestRegistryOverS3 runs the registry over the bucket: a chunked upload
// (appends), a manifest, pulls redirected to pre-signed URLs, a deletion
// and a garbage collection.
func TestRegistryOverS3(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	d := newDriver(t, srv.url, func(c *Config) { c.Redirect = true })
	ts := httptest.NewServer(server.New(server.Options{Storage: d}))
	t.Cleanup(ts.Close)
	do := func(method, path string, body []byte, want int, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
		if len(hdr) == 2 {
			req.Header.Set(hdr[0], hdr[1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, want)
		}
		res.Body = io.NopCloser(bytes.NewReader(b))
		return res
	}
	layer := bytes.Repeat([]byte("s3 layer "), 200000)
	ld := digest.FromBytes(layer)
	loc := do("POST", "/v2/s3/app/blobs/uploads/", nil, 202).Header.Get("Location")
	for _, part := range [][]byte{layer[:700000], layer[700000:]} {
		loc = do("PATCH", loc, part, 202).Header.Get("Location")
	}
	do("PUT", loc+"?digest="+ld.String(), nil, 201)
	cfg := []byte(`{"os":"linux"}`)
	cd := digest.FromBytes(cfg)
	do("POST", "/v2/s3/app/blobs/uploads/?digest="+cd.String(), cfg, 201)
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		cd, len(cfg), ld, len(layer))
	do("PUT", "/v2/s3/app/manifests/v1", m, 201, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if got, _ := io.ReadAll(do("GET", "/v2/s3/app/manifests/v1", nil, 200).Body); !bytes.Equal(got, m) {
		t.Fatal("manifest differs")
	}
	res := do("GET", "/v2/s3/app/blobs/"+ld.String(), nil, 200)
	if got, _ := io.ReadAll(res.Body); !bytes.Equal(got, layer) || res.Request.URL.Host == ts.Listener.Addr().String() {
		t.Fatalf("blob GET not served by a redirect to the bucket (%s)", res.Request.URL.Host)
	}
	do("HEAD", "/v2/s3/app/blobs/"+ld.String(), nil, 200)
	do("DELETE", "/v2/s3/app/manifests/"+digest.FromBytes(m).String(), nil, 202)
	rep, err := server.Collect(t.Context(), d, server.GCOptions{Grace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DeletedBlobs != 3 || rep.LiveBlobs != 0 {
		t.Fatalf("collection over S3: %+v", rep)
	}
	do("HEAD", "/v2/s3/app/blobs/"+ld.String(), nil, 404)
	if names, err := d.List(t.Context(), "data"); err == nil {
		t.Fatalf("data left after collection: %v", names)
	}
}

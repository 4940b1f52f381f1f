package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"berth/registry/storage/fs"
)

// redirectingFS is the fs backend plus the optional RedirectURL capability,
// pointing clients at a plain file server over the same root, as an object
// store hands out pre-signed URLs.
type redirectingFS struct {
	*fs.Driver
	base string
}

func (d redirectingFS) RedirectURL(r *http.Request, path string) (string, error) {
	if strings.HasPrefix(path, "data/") {
		return d.base + "/" + path, nil
	}
	return "", nil
}

func TestBlobRedirect(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	files := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(files.Close)
	d, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(Options{Storage: redirectingFS{d, files.URL}}))
	t.Cleanup(ts.Close)
	e := &env{t: t, url: ts.URL, root: root}
	dg := e.pushBlob("r", []byte("served elsewhere"))

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(ts.URL + "/v2/r/blobs/" + dg.String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(res.Header.Get("Location"), files.URL+"/data/") {
		t.Fatalf("GET: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	// Following the redirect yields the blob; HEAD is still answered here.
	res, err = http.Get(ts.URL + "/v2/r/blobs/" + dg.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "served elsewhere" {
		t.Fatalf("redirected body %q", body)
	}
	e.do("HEAD", "/v2/r/blobs/"+dg.String(), nil).want(t, 200, "")
}

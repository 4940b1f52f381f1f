package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth/registry"
	"berth/registry/storage/fs"
)

// pushImage pushes a one-layer image with the registry's own handler over
// root, as another registry process would.
func pushImage(t *testing.T, url, repo, layer string) {
	t.Helper()
	put := func(method, path, ct string, body []byte) {
		req, _ := http.NewRequest(method, url+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("%s %s: %v %v", method, path, err, res)
		}
		res.Body.Close()
	}
	blob := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		put("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), "", b)
		return d
	}
	cfg := []byte(`{"os":"linux"}`)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		blob(cfg), len(cfg), blob([]byte(layer)), len(layer))
	put("PUT", "/v2/"+repo+"/manifests/v1", "application/vnd.oci.image.manifest.v1+json", []byte(m))
}

func TestGCAndRepoCommands(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	h, err := registry.NewHandler(t.Context(), registry.DefaultConfig(), d, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	pushImage(t, ts.URL, "keep/app", "kept")
	pushImage(t, ts.URL, "drop/app", "dropped")

	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"repo", "ls", "--root", root}, 0, "drop/app\nkeep/app\n"},
		{[]string{"repo", "rm", "drop/app", "--root", root}, 0, "drop/app\n"},
		{[]string{"repo", "rm", "drop/app", "--root", root}, 1, ""},
		{[]string{"repo", "rm", "--root", root}, 2, ""},
		{[]string{"repo", "frob", "--root", root}, 2, ""},
		{[]string{"repo", "ls", "--root", root}, 0, "keep/app\n"},
		// Within the default hour of grace nothing goes.
		{[]string{"gc", "--root", root}, 0, "deleted 0 manifests, 0 blobs"},
		{[]string{"gc", "--root", root, "--grace", "1ns", "--dry-run"}, 0, "would delete 0 manifests, 2 blobs"},
		{[]string{"gc", "--root", root, "--grace", "1ns"}, 0, "deleted 0 manifests, 2 blobs"},
		{[]string{"gc", "--root", root, "extra"}, 2, ""},
	}
	for _, s := range steps {
		code, out, stderr := runCmd(t, "", s.args...)
		if code != s.code || !strings.Contains(out, s.out) {
			t.Fatalf("%v: exit %d (want %d), stdout %q, stderr %q", s.args, code, s.code, out, stderr)
		}
	}
	_, out, _ := runCmd(t, "", "gc", "--root", root, "--grace", "1ns", "--json")
	var rep struct{ LiveBlobs, DeletedBlobs int }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.LiveBlobs != 3 || rep.DeletedBlobs != 0 {
		t.Fatalf("gc --json = %s (%v)", out, err)
	}
}

package server

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const (
	mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex    = "application/vnd.oci.image.index.v1+json"
)

func TestManifestByTagAndDigest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Pushed bytes keep their exact formatting.
	body := append(e.image("ns/app", "layer1"), ' ', '\n')
	d := digest.FromBytes(body)
	r := e.pushManifest("ns/app", "v1", mtOCIManifest, body).want(t, 201, "")
	if r.header.Get("Docker-Content-Digest") != d.String() || r.header.Get("Location") != "/v2/ns/app/manifests/"+d.String() {
		t.Fatalf("PUT headers %v", r.header)
	}
	for _, ref := range []string{"v1", d.String()} {
		for _, method := range []string{"GET", "HEAD"} {
			r := e.do(method, "/v2/ns/app/manifests/"+ref, nil, "Accept", mtOCIManifest).want(t, 200, "")
			if r.header.Get("Content-Type") != mtOCIManifest || r.header.Get("Docker-Content-Digest") != d.String() {
				t.Fatalf("%s %s headers %v", method, ref, r.header)
			}
			if method == "GET" && !bytes.Equal(r.body, body) {
				t.Fatalf("GET %s body differs", ref)
			}
			if method == "HEAD" && (len(r.body) != 0 || r.header.Get("Content-Length") != strconv.Itoa(len(body))) {
				t.Fatalf("HEAD %s: body %d bytes, Content-Length %s", ref, len(r.body), r.header.Get("Content-Length"))
			}
		}
	}
	for _, accept := range []string{"", "*/*", mtDockerManifest + ", " + mtOCIManifest + ";q=0.9", "application/*"} {
		e.do("GET", "/v2/ns/app/manifests/v1", nil, "Accept", accept).want(t, 200, "")
	}
	e.do("GET", "/v2/ns/app/manifests/v1", nil, "Accept", mtDockerManifest).want(t, 404, codeManifestUnknown)
	e.do("GET", "/v2/ns/app/manifests/nope", nil).want(t, 404, codeManifestUnknown)
	e.do("GET", "/v2/ns/app/manifests/.bad-tag", nil).want(t, 404, codeManifestUnknown)
	e.do("GET", "/v2/ns/app/manifests/"+digest.FromString("x").String(), nil).want(t, 404, codeManifestUnknown)
}

func TestDockerSchema2AndLists(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := []byte(`{"architecture":"arm64","os":"linux"}`)
	cd := e.pushBlob("d/img", cfg)
	ld := e.pushBlob("d/img", []byte("docker layer"))
	m := mustJSON(t, map[string]any{
		"schemaVersion": 2, "mediaType": mtDockerManifest,
		"config": map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd, "size": len(cfg)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ld, "size": 12},
			map[string]any{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": digest.FromString("foreign"), "size": 7, "urls": []string{"https://example.invalid/l"}}},
	})
	md := digest.FromBytes(m)
	e.pushManifest("d/img", "arm64", mtDockerManifest, m).want(t, 201, "")
	list := mustJSON(t, map[string]any{
		"schemaVersion": 2, "mediaType": mtDockerList,
		"manifests": []any{map[string]any{"mediaType": mtDockerManifest, "digest": md, "size": len(m), "platform": map[string]string{"architecture": "arm64", "os": "linux"}}},
	})
	e.pushManifest("d/img", "latest", mtDockerList, list).want(t, 201, "")
	r := e.do("GET", "/v2/d/img/manifests/latest", nil).want(t, 200, "")
	if r.header.Get("Content-Type") != mtDockerList || !bytes.Equal(r.body, list) {
		t.Fatalf("list: Content-Type %q", r.header.Get("Content-Type"))
	}
	// An OCI index over it in the same repository is stored as pushed.
	ociIdx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex,
		"manifests": []any{map[string]any{"mediaType": mtDockerManifest, "digest": md, "size": len(m)}}})
	e.pushManifest("d/img", "oci", mtOCIIndex, ociIdx).want(t, 201, "")
	r = e.do("GET", "/v2/d/img/manifests/oci", nil, "Accept", mtOCIIndex).want(t, 200, "")
	if r.header.Get("Content-Type") != mtOCIIndex || !bytes.Equal(r.body, ociIdx) {
		t.Fatalf("OCI index: Content-Type %q", r.header.Get("Content-Type"))
	}
	// An OCI index over a manifest of another repository is refused.
	idx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex,
		"manifests": []any{map[string]any{"mediaType": mtDockerManifest, "digest": md, "size": len(m)}}})
	e.pushManifest("d/other", "x", mtOCIIndex, idx).want(t, 400, codeManifestBlobUnknown)
}

func TestBadManifests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := e.image("r", "l")
	missingLayer := bytes.Replace(good, []byte(digest.FromString("l").Encoded()), []byte(digest.FromString("gone").Encoded()), 1)
	tests := []struct {
		name, ref, mt string
		body          []byte
		status        int
		code          string
	}{
		{"not json", "t", mtOCIManifest, []byte("{"), 400, codeManifestInvalid},
		{"media type mismatch", "t", mtDockerManifest, good, 400, codeManifestInvalid},
		{"unsupported type", "t", "application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1}`), 400, codeManifestInvalid},
		{"schema version", "t", mtOCIManifest, []byte(`{"schemaVersion":1,"config":{}}`), 400, codeManifestInvalid},
		{"missing layer", "t", mtOCIManifest, missingLayer, 400, codeManifestBlobUnknown},
		{"digest mismatch", digest.FromString("other").String(), mtOCIManifest, good, 400, codeDigestInvalid},
		{"bad digest", "sha256:nothex", mtOCIManifest, good, 400, codeDigestInvalid},
		{"bad tag", "-bad", mtOCIManifest, good, 400, codeTagInvalid},
		{"bad tag param", "t?tag=ok&tag=no!", mtOCIManifest, good, 400, codeTagInvalid},
		{"oversized", "t", mtOCIManifest, append(good[:len(good)-1], []byte(`,"pad":"`+strings.Repeat("x", 70<<10)+`"}`)...), 413, codeSizeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.pushManifest("r", tc.ref, tc.mt, tc.body).want(t, tc.status, tc.code)
		})
	}
	// Nothing was stored by any of them.
	r := e.do("GET", "/v2/r/tags/list", nil).want(t, 200, "")
	if !bytes.Contains(r.body, []byte(`"tags":[]`)) {
		t.Fatalf("tags after bad pushes: %s", r.body)
	}
}

func TestTagParamsAndDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := e.image("r", "x")
	d := digest.FromBytes(body)
	r := e.pushManifest("r", d.String()+"?tag=a&tag=b", mtOCIManifest, body).want(t, 201, "")
	if got := r.header.Values("OCI-Tag"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("OCI-Tag = %v", got)
	}
	e.pushManifest("r", "c", mtOCIManifest, body).want(t, 201, "")
	// Deleting a tag leaves the manifest and the other tags.
	e.do("DELETE", "/v2/r/manifests/a", nil).want(t, 202, "")
	e.do("GET", "/v2/r/manifests/a", nil).want(t, 404, codeManifestUnknown)
	e.do("GET", "/v2/r/manifests/b", nil).want(t, 200, "")
	e.do("DELETE", "/v2/r/manifests/a", nil).want(t, 404, codeManifestUnknown)
	// Deleting by digest removes the manifest and every tag on it.
	e.do("DELETE", "/v2/r/manifests/"+d.String(), nil).want(t, 202, "")
	for _, ref := range []string{d.String(), "b", "c"} {
		e.do("GET", "/v2/r/manifests/"+ref, nil).want(t, 404, codeManifestUnknown)
	}
	e.do("DELETE", "/v2/r/manifests/"+d.String(), nil).want(t, 404, codeManifestUnknown)
}

package server

import (
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestReferrers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	subjectBody := e.image("r", "base")
	subject := digest.FromBytes(subjectBody)
	empty := e.pushBlob("r", []byte("{}"))
	artifact := func(artifactType, ann string, subj digest.Digest) []byte {
		return mustJSON(t, map[string]any{
			"schemaVersion": 2, "mediaType": mtOCIManifest, "artifactType": artifactType,
			"config":      map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
			"layers":      []any{},
			"subject":     map[string]any{"mediaType": mtOCIManifest, "digest": subj, "size": len(subjectBody)},
			"annotations": map[string]string{"note": ann},
		})
	}
	// The subject need not exist yet (spec): pushed before its subject.
	sig := artifact("application/vnd.example.sig", "s", subject)
	r := e.pushManifest("r", digest.FromBytes(sig).String(), mtOCIManifest, sig).want(t, 201, "")
	if r.header.Get("OCI-Subject") != subject.String() {
		t.Fatalf("OCI-Subject = %q", r.header.Get("OCI-Subject"))
	}
	e.pushManifest("r", "v1", mtOCIManifest, subjectBody).want(t, 201, "")
	sbom := artifact("application/vnd.example.sbom", "b", subject)
	e.pushManifest("r", digest.FromBytes(sbom).String(), mtOCIManifest, sbom).want(t, 201, "")

	list := func(query string) (ocispec.Index, string) {
		r := e.do("GET", "/v2/r/referrers/"+subject.String()+query, nil).want(t, 200, "")
		if r.header.Get("Content-Type") != mtOCIIndex {
			t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
		}
		var idx ocispec.Index
		if err := json.Unmarshal(r.body, &idx); err != nil {
			t.Fatal(err)
		}
		return idx, r.header.Get("OCI-Filters-Applied")
	}
	idx, filters := list("")
	if len(idx.Manifests) != 2 || filters != "" {
		t.Fatalf("referrers = %+v, filters %q", idx.Manifests, filters)
	}
	idx, filters = list("?artifactType=application/vnd.example.sbom")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digest.FromBytes(sbom) || filters != "artifactType" ||
		idx.Manifests[0].Annotations["note"] != "b" || idx.Manifests[0].ArtifactType != "application/vnd.example.sbom" {
		t.Fatalf("filtered referrers = %+v, filters %q", idx.Manifests, filters)
	}
	// Deleting a referrer removes it from the list.
	e.do("DELETE", "/v2/r/manifests/"+digest.FromBytes(sig).String(), nil).want(t, 202, "")
	if idx, _ := list(""); len(idx.Manifests) != 1 {
		t.Fatalf("after delete: %+v", idx.Manifests)
	}
	// Unknown subjects have an empty list, never 404.
	r = e.do("GET", "/v2/r/referrers/"+digest.FromString("none").String(), nil).want(t, 200, "")
	if string(r.body) != `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}` {
		t.Fatalf("empty referrers body %s", r.body)
	}
	e.do("GET", "/v2/r/referrers/sha256:bad", nil).want(t, 400, codeDigestInvalid)
}

package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const skopeo = "/usr/bin/skopeo"

// writeLayout writes a one-layer OCI image layout tagged v1 and returns its
// manifest digest.
func writeLayout(t *testing.T, dir string) digest.Digest {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	content := []byte("hello from berth\n")
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write(content)
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfg := mustMarshal(t, ocispec.Image{Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tarBuf.Bytes())}}})
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: put(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: put(gz.Bytes()), Size: int64(gz.Len())}}}
	m.SchemaVersion = 2
	mb := mustMarshal(t, m)
	md := put(mb)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{
		MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb)),
		Annotations: map[string]string{ocispec.AnnotationRefName: "v1"}}}}
	idx.SchemaVersion = 2
	os.WriteFile(filepath.Join(dir, "index.json"), mustMarshal(t, idx), 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return md
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runSkopeo(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), skopeo, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSkopeoRoundTrip copies an image into the registry, between two
// repositories and back out with the stock skopeo client, under each auth
// mode, and checks the manifest digest survives every hop.
func TestSkopeoRoundTrip(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(skopeo); err != nil {
		t.Skip("skopeo not installed at /usr/bin/skopeo")
	}
	for _, mode := range []string{"none", "basic", "token"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := startRegistry(t, mode)
			host := strings.TrimPrefix(e.url, "http://")
			src := t.TempDir()
			want := writeLayout(t, src)
			creds := func(flag string) []string {
				if mode == "none" {
					return nil
				}
				return []string{flag, "alice:alice-pw"}
			}
			copyArgs := func(from, to string, extra ...string) []string {
				return append([]string{"copy", "--src-tls-verify=false", "--dest-tls-verify=false"}, append(extra, from, to)...)
			}
			runSkopeo(t, copyArgs("oci:"+src+":v1", "docker://"+host+"/alice/img:v1", creds("--dest-creds")...)...)
			between := append(creds("--src-creds"), creds("--dest-creds")...)
			runSkopeo(t, copyArgs("docker://"+host+"/alice/img:v1", "docker://"+host+"/alice/copy:v1", between...)...)
			out := t.TempDir()
			runSkopeo(t, copyArgs("docker://"+host+"/alice/copy:v1", "oci:"+out+":v1", creds("--src-creds")...)...)

			for _, repo := range []string{"alice/img", "alice/copy"} {
				raw := runSkopeo(t, append([]string{"inspect", "--raw", "--tls-verify=false", "docker://" + host + "/" + repo + ":v1"}, creds("--creds")...)...)
				if got := digest.FromString(raw); got != want {
					t.Errorf("%s manifest digest %s, want %s", repo, got, want)
				}
			}
			// Docker schema2 too: skopeo converts, the registry keeps its bytes.
			runSkopeo(t, copyArgs("oci:"+src+":v1", "docker://"+host+"/alice/v2s2:v1", append(creds("--dest-creds"), "--format", "v2s2")...)...)
			raw := runSkopeo(t, append([]string{"inspect", "--raw", "--tls-verify=false", "docker://" + host + "/alice/v2s2:v1"}, creds("--creds")...)...)
			if !strings.Contains(raw, "application/vnd.docker.distribution.manifest.v2+json") {
				t.Errorf("v2s2 push stored %s", raw)
			}
			runSkopeo(t, copyArgs("docker://"+host+"/alice/v2s2:v1", "dir:"+t.TempDir(), creds("--src-creds")...)...)

			var idx ocispec.Index
			b, err := os.ReadFile(filepath.Join(out, "index.json"))
			if err != nil || json.Unmarshal(b, &idx) != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != want {
				t.Fatalf("copied-out layout index %s (%v), want manifest %s", b, err, want)
			}
		})
	}
}

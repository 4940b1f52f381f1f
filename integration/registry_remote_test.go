package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/remote"
)

// ociImage is a one-layer image for arch, zstd-compressed, as raw blobs.
type ociImage struct {
	layer, config, manifest []byte
}

func makeOCIImage(t *testing.T, arch, file string) ociImage {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(arch)), ModTime: time.Unix(1700000000, 0)})
	tw.Write([]byte(arch))
	tw.Close()
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw.Bytes())}}})
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: digest.FromBytes(z.Bytes()), Size: int64(z.Len())}}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	return ociImage{layer: z.Bytes(), config: cfg, manifest: body}
}

// pushIndex stores an OCI index of one image per arch under ref.
func pushIndex(t *testing.T, ref string, archs ...string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	named, _ := reference.ParseNormalizedNamed(ref)
	sess := remote.New(remote.Options{}).Session(nil)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, arch := range archs {
		img := makeOCIImage(t, arch, "arch")
		for _, blob := range [][]byte{img.layer, img.config} {
			d := ocispec.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
			if err := sess.PushBlob(ctx, named, d, bytes.NewReader(blob)); err != nil {
				t.Fatal(err)
			}
		}
		dg, err := sess.PushManifest(ctx, reference.TrimNamed(named), ocispec.MediaTypeImageManifest, img.manifest)
		if err != nil {
			t.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: dg,
			Size: int64(len(img.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: arch}})
	}
	body, _ := json.Marshal(idx)
	dg, err := sess.PushManifest(ctx, named, ocispec.MediaTypeImageIndex, body)
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

func TestPullPlatformFromIndex(t *testing.T) {
	t.Parallel()
	reg := startCNCFRegistry(t, nil)
	d := startDaemon(t)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	ref := reg + "/berth-it/multiarch:v1"
	idx := pushIndex(t, ref, other, runtime.GOARCH)
	d.must("pull", ref)
	if got := strings.TrimSpace(d.must("image", "inspect", "--format", "{{.Architecture}}", ref)); got != runtime.GOARCH {
		t.Fatalf("default platform pulled %s", got)
	}
	d.must("pull", "--platform", "linux/"+other, ref)
	if got := strings.TrimSpace(d.must("image", "inspect", "--format", "{{.Architecture}}", ref)); got != other {
		t.Fatalf("--platform linux/%s pulled %s", other, got)
	}
	// Docker records the index digest as the RepoDigest.
	if got := d.must("image", "inspect", "--format", "{{json .RepoDigests}}", ref); !strings.Contains(got, "@"+idx.String()) {
		t.Fatalf("repo digests %s, want the index %s", got, idx)
	}
	r := d.berth("pull", "--platform", "linux/s390x", ref)
	if r.Code != 1 || !strings.Contains(r.Stderr, "no matching manifest for linux/s390x") {
		t.Fatalf("pull of a platform the index lacks: %s", r)
	}
}

func TestRegistryMirrors(t *testing.T) {
	t.Parallel()
	origin := startBerthRegistry(t, "none", nil)
	mirrorAddr := startCNCFRegistry(t, nil)
	d := startDaemon(t)
	// Only in the mirror (under the same repository path) and only in the
	// origin: both pull through the origin's name.
	pushRandomImage(t, d, mirrorAddr, "berth-it/mirrored", 11, 64<<10)
	onlyOrigin := pushRandomImage(t, d, origin, "berth-it/origin-only", 12, 64<<10)

	d.stop()
	cfg, _ := json.Marshal(map[string]any{"registry-mirrors": []string{"http://" + mirrorAddr}})
	if err := os.WriteFile(filepath.Join(d.dir, "daemon.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	d.must("pull", origin+"/berth-it/mirrored:v1")
	d.must("pull", origin+"/berth-it/origin-only:v1")
	if got := strings.TrimSpace(d.must("images", "-q", "--no-trunc", origin+"/berth-it/origin-only:v1")); got != onlyOrigin {
		t.Fatalf("fallback to the origin pulled %q, want %q", got, onlyOrigin)
	}
}

// hostileRegistry serves crafted manifests and blobs: name -> content.
type hostileRegistry struct {
	mu        sync.Mutex
	manifests map[string]hostileManifest // repo -> manifest for tag v1
	blobs     map[digest.Digest][]byte
}

type hostileManifest struct {
	mediaType, digestHeader string
	body                    []byte
}

func (h *hostileRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	switch {
	case p == "":
		w.WriteHeader(http.StatusOK)
	case strings.Contains(p, "/manifests/"):
		m, ok := h.manifests[p[:strings.Index(p, "/manifests/")]]
		if !ok {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", m.digestHeader)
		w.Write(m.body)
	case strings.Contains(p, "/blobs/"):
		b, ok := h.blobs[digest.Digest(p[strings.Index(p, "/blobs/")+len("/blobs/"):])]
		if !ok {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

func (h *hostileRegistry) add(repo string, m ocispec.Manifest, digestHeader string) {
	m.SchemaVersion = 2
	m.MediaType = remote.MediaTypeDockerManifest
	body, _ := json.Marshal(m)
	if digestHeader == "" {
		digestHeader = digest.FromBytes(body).String()
	}
	h.manifests[repo] = hostileManifest{mediaType: m.MediaType, digestHeader: digestHeader, body: body}
}

func (h *hostileRegistry) blob(b []byte, size int64) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: remote.MediaTypeDockerLayer, Digest: digest.FromBytes(b), Size: size}
	h.blobs[d.Digest] = b
	return d
}

func TestPullFromHostileRegistry(t *testing.T) {
	t.Parallel()
	h := &hostileRegistry{manifests: map[string]hostileManifest{}, blobs: map[digest.Digest][]byte{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	layerTar := randomTar(t, 21, 1<<20)
	var gz bytes.Buffer
	w, _ := zstd.NewWriter(&gz)
	w.Write(layerTar)
	w.Close()
	layer := h.blob(gz.Bytes(), int64(gz.Len()))
	cfgFor := func(n int) ocispec.Descriptor {
		ids := make([]digest.Digest, n)
		for i := range ids {
			ids[i] = digest.FromBytes(layerTar)
		}
		raw, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: ids}})
		d := h.blob(raw, int64(len(raw)))
		d.MediaType = remote.MediaTypeDockerConfig
		return d
	}
	good := ocispec.Manifest{Config: cfgFor(1), Layers: []ocispec.Descriptor{layer}}
	h.add("berth-it/digestlie", good, digest.FromString("something else").String())
	many := make([]ocispec.Descriptor, 1001)
	for i := range many {
		many[i] = layer
	}
	h.add("berth-it/manylayers", ocispec.Manifest{Config: cfgFor(1001), Layers: many}, "")
	huge := layer
	huge.Size = 1 << 50
	h.add("berth-it/hugelayer", ocispec.Manifest{Config: cfgFor(1), Layers: []ocispec.Descriptor{huge}}, "")
	h.add("berth-it/countmismatch", ocispec.Manifest{Config: cfgFor(1), Layers: []ocispec.Descriptor{layer, layer}}, "")
	wrong := append([]byte(nil), gz.Bytes()...)
	wrong[len(wrong)/2] ^= 0xff
	badLayer := layer
	badLayer.Digest = digest.FromString("the registry will send other bytes")
	h.blobs[badLayer.Digest] = wrong
	h.add("berth-it/badblob", ocispec.Manifest{Config: cfgFor(1), Layers: []ocispec.Descriptor{badLayer}}, "")
	helm := cfgFor(1)
	helm.MediaType = "application/vnd.cncf.helm.config.v1+json"
	h.add("berth-it/notimage", ocispec.Manifest{Config: helm, Layers: []ocispec.Descriptor{layer}}, "")

	d := startDaemon(t)
	cases := map[string]string{
		"digestlie":     "does not match",
		"manylayers":    "1001 layers, more than 1000",
		"hugelayer":     "out of range",
		"countmismatch": "manifest lists 2 layers but the config 1 diff IDs",
		"badblob":       "content digest sha256:",
		"notimage":      "is not a container image",
		"missing":       "manifest for " + host + "/berth-it/missing:v1 not found: manifest unknown: manifest unknown",
	}
	for repo, want := range cases {
		r := d.berth("pull", host+"/berth-it/"+repo+":v1")
		if r.Code != 1 || !strings.Contains(r.Stderr, want) {
			t.Errorf("%s: %s\nwant an error containing %q", repo, r, want)
		}
	}
	if got := strings.TrimSpace(d.must("images", "-a", "-q")); got != "" {
		t.Fatalf("images after failed pulls: %q", got)
	}
	entries, _ := os.ReadDir(filepath.Join(d.DataRoot, "content", "ingest"))
	if len(entries) != 0 {
		t.Fatalf("%d ingests kept after content that failed verification", len(entries))
	}
}

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"berth/archive"
	"berth/mount"
	"berth/registry"
	"berth/registry/storage/fs"
	"berth/remote"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testRegistry is berth's own registry, in process on loopback, behind a
// fault-injecting middleware that also records the blob requests.
type testRegistry struct {
	*httptest.Server
	host string

	mu       sync.Mutex
	blobGets map[digest.Digest]int
	ranges   []string // Range headers of blob GETs
	requests []string // "METHOD path?query" of every request
	// fault, when set, may answer a request itself (returns true) or
	// wrap the response writer.
	fault func(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool)
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := registry.DefaultConfig()
	h, err := registry.NewHandler(context.Background(), cfg, d, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRegistry{blobGets: map[digest.Digest]int{}}
	tr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			dg := digest.Digest(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			tr.mu.Lock()
			tr.blobGets[dg]++
			if rg := r.Header.Get("Range"); rg != "" {
				tr.ranges = append(tr.ranges, rg)
			}
			tr.mu.Unlock()
		}
		tr.mu.Lock()
		fault := tr.fault
		tr.requests = append(tr.requests, r.Method+" "+r.URL.RequestURI())
		tr.mu.Unlock()
		if fault != nil {
			ww, done := fault(w, r)
			if done {
				return
			}
			w = ww
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.Close)
	tr.host = strings.TrimPrefix(tr.URL, "http://")
	return tr
}

func (tr *testRegistry) setFault(f func(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool)) {
	tr.mu.Lock()
	tr.fault = f
	tr.mu.Unlock()
}

func (tr *testRegistry) gets(d digest.Digest) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.blobGets[d]
}

// count returns how many requests since the from-th had method and a path
// containing part.
func (tr *testRegistry) count(from int, method, part string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.requests[from:] {
		if strings.HasPrefix(r, method+" ") && strings.Contains(r, part) {
			n++
		}
	}
	return n
}

func (tr *testRegistry) mark() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.requests)
}

func (tr *testRegistry) rangeHeaders() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.ranges...)
}

// cutWriter passes the first n body bytes, then drops the connection.
type cutWriter struct {
	http.ResponseWriter
	n int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.n {
		c.ResponseWriter.Write(p[:c.n])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.n -= int64(len(p))
	return c.ResponseWriter.Write(p)
}

// newRemote returns a registry client with quick retries.
func newRemote() *remote.Client {
	return remote.New(remote.Options{RetryBackoff: 5 * time.Millisecond, MaxRetries: 2})
}

// newPullService is newService with a registry client.
func newPullService(t *testing.T, d driverCase, rc *remote.Client) *Service {
	t.Helper()
	s := newService(t, d)
	s.dist = newDistribution(rc, 3, 5)
	return s
}

// testLayer is one layer as a test builds it.
type testLayer struct {
	files map[string]string // path -> content ("" makes a directory)
	comp  archive.Compression
	// random adds this many incompressible bytes in /blob, so that
	// transfers take long enough to be cut.
	random int
}

func (l testLayer) tar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(l.files)) {
		body := l.files[name]
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if body == "" && strings.HasSuffix(name, "/") {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if l.random > 0 {
		data := make([]byte, l.random)
		rand.New(rand.NewSource(int64(l.random))).Read(data)
		tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)})
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t *testing.T, raw []byte, c archive.Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.CompressStream(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerMediaType(c archive.Compression, docker bool) string {
	switch {
	case docker:
		return remote.MediaTypeDockerLayer
	case c == archive.Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case c == archive.Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// builtImage is what pushTestImage put into the registry.
type builtImage struct {
	ref      reference.Named
	manifest digest.Digest // the manifest, or the index when there is one
	config   digest.Digest
	blobs    []ocispec.Descriptor
}

// pushTestImage uploads an image of layers to ref ("host/repo:tag") with
// the client library: a Docker schema2 manifest when docker is set, else
// OCI; wrapped in an index that also lists a foreign platform when index
// is set.
func pushTestImage(t *testing.T, ref string, layers []testLayer, docker, index bool) builtImage {
	t.Helper()
	ctx := context.Background()
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Fatal(err)
	}
	named = reference.TagNameOnly(named)
	sess := newRemote().Session(nil)
	var out builtImage
	out.ref = named
	var diffIDs []digest.Digest
	for _, l := range layers {
		raw := l.tar(t)
		diffIDs = append(diffIDs, digest.FromBytes(raw))
		blob := compress(t, raw, l.comp)
		desc := ocispec.Descriptor{MediaType: layerMediaType(l.comp, docker), Digest: digest.FromBytes(blob), Size: int64(len(blob))}
		if err := sess.PushBlob(ctx, named, desc, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		out.blobs = append(out.blobs, desc)
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config: ocispec.ImageConfig{Cmd: []string{"sh"}, Labels: map[string]string{"ref": ref}}}
	raw, _ := json.Marshal(cfg)
	cfgType, mType := ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	if docker {
		cfgType, mType = remote.MediaTypeDockerConfig, remote.MediaTypeDockerManifest
	}
	cdesc := ocispec.Descriptor{MediaType: cfgType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	if err := sess.PushBlob(ctx, named, cdesc, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	out.config = cdesc.Digest
	m := ocispec.Manifest{MediaType: mType, Config: cdesc, Layers: out.blobs}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	if !index {
		if out.manifest, err = sess.PushManifest(ctx, named, mType, body); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A name without tag pushes by digest.
	mdg, err := sess.PushManifest(ctx, reference.TrimNamed(named), mType, body)
	if err != nil {
		t.Fatal(err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	idxType := ocispec.MediaTypeImageIndex
	if docker {
		idxType = remote.MediaTypeDockerManifestList
	}
	// The foreign entry comes first; it has another config, so choosing
	// it would show in the image ID.
	fcfg := cfg
	fcfg.Architecture = other
	fraw, _ := json.Marshal(fcfg)
	fdesc := ocispec.Descriptor{MediaType: cfgType, Digest: digest.FromBytes(fraw), Size: int64(len(fraw))}
	if err := sess.PushBlob(ctx, named, fdesc, bytes.NewReader(fraw)); err != nil {
		t.Fatal(err)
	}
	fm := m
	fm.Config = fdesc
	fbody, _ := json.Marshal(fm)
	fdg, err := sess.PushManifest(ctx, reference.TrimNamed(named), mType, fbody)
	if err != nil {
		t.Fatal(err)
	}
	idx := ocispec.Index{MediaType: idxType, Manifests: []ocispec.Descriptor{
		{MediaType: mType, Digest: fdg, Size: int64(len(fbody)), Platform: &ocispec.Platform{OS: "linux", Architecture: other}},
		{MediaType: mType, Digest: mdg, Size: int64(len(body)), Platform: &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}},
	}}
	idx.SchemaVersion = 2
	ibody, _ := json.Marshal(idx)
	if out.manifest, err = sess.PushManifest(ctx, named, idxType, ibody); err != nil {
		t.Fatal(err)
	}
	return out
}

// recorder collects progress messages.
type recorder struct {
	mu   sync.Mutex
	msgs []Progress
}

func (r *recorder) add(p Progress) {
	r.mu.Lock()
	r.msgs = append(r.msgs, p)
	r.mu.Unlock()
}

// lines renders the messages as a non-terminal docker CLI prints them:
// those without a progress bar, "id: status".
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if m.Total > 0 {
			continue
		}
		if m.ID != "" {
			out = append(out, m.ID+": "+m.Status)
		} else {
			out = append(out, m.Status)
		}
	}
	return out
}

func (r *recorder) has(line string) bool {
	for _, l := range r.lines() {
		if l == line {
			return true
		}
	}
	return false
}

// readImageFile reads path from the top layer of image ref.
func pulledFile(t *testing.T, s *Service, ref, path string) string {
	t.Helper()
	ctx := context.Background()
	id, err := s.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	top, err := s.TopLayer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("view-%d", time.Now().UnixNano())
	mounts, err := s.sn.View(ctx, key, top)
	if err != nil {
		t.Fatal(err)
	}
	defer s.sn.Remove(ctx, key)
	var data []byte
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		var err error
		data, err = os.ReadFile(filepath.Join(root, path))
		return err
	})
	if err != nil {
		t.Fatalf("read %s of %s: %v", path, ref, err)
	}
	return string(data)
}

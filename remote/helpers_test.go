package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/remote/credentials"
)

// faultServer is a minimal read-only registry for failure injection: it
// serves the manifests and blobs put into it, after hook has had a chance
// to answer (hook returns true when it wrote the response).
type faultServer struct {
	*httptest.Server
	mu        sync.Mutex
	manifests map[string]served // by tag and by digest
	blobs     map[digest.Digest][]byte
	hook      func(w http.ResponseWriter, r *http.Request) bool
	requests  atomic.Int64
}

type served struct {
	mediaType string
	body      []byte
	digestHdr string // Docker-Content-Digest to send; computed when empty
}

func newFaultServer(t *testing.T, tlsServer bool) *faultServer {
	t.Helper()
	fs := &faultServer{manifests: map[string]served{}, blobs: map[digest.Digest][]byte{}}
	h := http.HandlerFunc(fs.serve)
	if tlsServer {
		fs.Server = httptest.NewTLSServer(h)
	} else {
		fs.Server = httptest.NewServer(h)
	}
	t.Cleanup(fs.Close)
	return fs
}

func (fs *faultServer) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(fs.URL, "http://"), "https://")
}

func (fs *faultServer) addManifest(tag, mediaType string, body []byte) digest.Digest {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d := digest.FromBytes(body)
	fs.manifests[tag] = served{mediaType: mediaType, body: body}
	fs.manifests[d.String()] = served{mediaType: mediaType, body: body}
	return d
}

func (fs *faultServer) addBlob(data []byte) ocispec.Descriptor {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d := digest.FromBytes(data)
	fs.blobs[d] = data
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(data))}
}

func (fs *faultServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.requests.Add(1)
	if fs.hook != nil && fs.hook(w, r) {
		return
	}
	path := r.URL.Path
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch {
	case path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.Contains(path, "/manifests/"):
		m, ok := fs.manifests[path[strings.LastIndex(path, "/")+1:]]
		if !ok {
			writeRegistryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN")
			return
		}
		dh := m.digestHdr
		if dh == "" {
			dh = digest.FromBytes(m.body).String()
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", dh)
		_, _ = w.Write(m.body)
	case strings.Contains(path, "/blobs/"):
		b, ok := fs.blobs[digest.Digest(path[strings.LastIndex(path, "/")+1:])]
		if !ok {
			writeRegistryError(w, http.StatusNotFound, "BLOB_UNKNOWN")
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	default:
		writeRegistryError(w, http.StatusNotFound, "NAME_UNKNOWN")
	}
}

func writeRegistryError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": strings.ToLower(strings.ReplaceAll(code, "_", " "))}}})
}

// testClient returns a client with fast retries and no certificates dir.
func testClient(t *testing.T, opts Options) *Client {
	t.Helper()
	opts.CertsDir = t.TempDir()
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 5 * time.Millisecond
	}
	return New(opts)
}

func staticCreds(a credentials.AuthConfig) Credentials {
	return func(context.Context, string) (credentials.AuthConfig, error) { return a, nil }
}

func mustRef(t *testing.T, s string) reference.Named {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// imageManifest builds a manifest of mediaType over a config and layers.
func imageManifest(t *testing.T, mediaType string, config ocispec.Descriptor, layers ...ocispec.Descriptor) []byte {
	t.Helper()
	m := ocispec.Manifest{MediaType: mediaType, Config: config, Layers: layers}
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var timeZero time.Time

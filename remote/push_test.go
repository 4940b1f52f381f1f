package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
)

// uploadServer accepts uploads the way the spec allows and stresses the
// client's Location handling: relative and absolute Locations that carry
// state in query parameters the client must keep.
type uploadServer struct {
	*httptest.Server
	mu        sync.Mutex
	absolute  bool
	minChunk  int // sent as OCI-Chunk-Min-Length when positive
	sessions  map[string]*bytes.Buffer
	blobs     map[digest.Digest][]byte
	cancelled int
	patches   int
	manifests map[string][]byte
}

func newUploadServer(t *testing.T, absolute bool) *uploadServer {
	us := &uploadServer{absolute: absolute, sessions: map[string]*bytes.Buffer{}, blobs: map[digest.Digest][]byte{}, manifests: map[string][]byte{}}
	us.Server = httptest.NewServer(http.HandlerFunc(us.serve))
	t.Cleanup(us.Close)
	return us
}

func (us *uploadServer) location(id string, n int) string {
	loc := fmt.Sprintf("/v2/app/blobs/uploads/%s?_state=%s-%d", id, id, n)
	if us.absolute {
		loc = us.URL + loc
	}
	return loc
}

func (us *uploadServer) serve(w http.ResponseWriter, r *http.Request) {
	us.mu.Lock()
	defer us.mu.Unlock()
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/v2/app/blobs/uploads/":
		if from := r.URL.Query().Get("mount"); from != "" {
			if _, ok := us.blobs[digest.Digest(from)]; ok {
				w.WriteHeader(http.StatusCreated)
				return
			}
		}
		id := strconv.Itoa(len(us.sessions) + 1)
		us.sessions[id] = &bytes.Buffer{}
		if us.minChunk > 0 {
			w.Header().Set("OCI-Chunk-Min-Length", strconv.Itoa(us.minChunk))
		}
		w.Header().Set("Location", us.location(id, 0))
		w.WriteHeader(http.StatusAccepted)
	case strings.HasPrefix(p, "/v2/app/blobs/uploads/"):
		id := strings.TrimPrefix(p, "/v2/app/blobs/uploads/")
		buf, ok := us.sessions[id]
		if !ok || !strings.HasPrefix(r.URL.Query().Get("_state"), id+"-") {
			writeRegistryError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
			return
		}
		switch r.Method {
		case http.MethodPatch:
			if cr := r.Header.Get("Content-Range"); cr != "" && !strings.HasPrefix(cr, strconv.Itoa(buf.Len())+"-") {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			us.patches++
			_, _ = io.Copy(buf, r.Body)
			w.Header().Set("Location", us.location(id, buf.Len()))
			w.Header().Set("Range", fmt.Sprintf("0-%d", buf.Len()-1))
			w.WriteHeader(http.StatusAccepted)
		case http.MethodPut:
			_, _ = io.Copy(buf, r.Body)
			d := digest.Digest(r.URL.Query().Get("digest"))
			if digest.FromBytes(buf.Bytes()) != d {
				writeRegistryError(w, http.StatusBadRequest, "DIGEST_INVALID")
				return
			}
			us.blobs[d] = buf.Bytes()
			delete(us.sessions, id)
			w.Header().Set("Docker-Content-Digest", d.String())
			w.WriteHeader(http.StatusCreated)
		case http.MethodDelete:
			us.cancelled++
			delete(us.sessions, id)
			w.WriteHeader(http.StatusNoContent)
		}
	case r.Method == http.MethodHead && strings.HasPrefix(p, "/v2/app/blobs/"):
		if _, ok := us.blobs[digest.Digest(strings.TrimPrefix(p, "/v2/app/blobs/"))]; ok {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	case r.Method == http.MethodPut && strings.HasPrefix(p, "/v2/app/manifests/"):
		body, _ := io.ReadAll(r.Body)
		us.manifests[strings.TrimPrefix(p, "/v2/app/manifests/")] = body
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestPushBlob(t *testing.T) {
	t.Parallel()
	data := randomBytes(t, 300000)
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	tests := []struct {
		name        string
		absolute    bool
		chunk       int64
		minChunk    int
		body        []byte
		wantPatches int
		wantErr     error
	}{
		{"relative monolithic", false, 0, 0, data, 1, nil},
		{"absolute monolithic", true, 0, 0, data, 1, nil},
		{"chunked", false, 100000, 0, data, 3, nil},
		{"chunked uneven", true, 128 << 10, 0, data, 3, nil},
		{"registry minimum chunk", false, 100000, 150000, data, 2, nil},
		{"corrupt source", false, 0, 0, append([]byte{data[0] ^ 1}, data[1:]...), 1, errdefs.ErrInvalidArgument},
		{"short source", false, 100000, 0, data[:250000], 3, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			us := newUploadServer(t, tt.absolute)
			us.minChunk = tt.minChunk
			c := testClient(t, Options{ChunkSize: tt.chunk})
			c.plainHTTP[strings.TrimPrefix(us.URL, "http://")] = true
			s := c.Session(nil)
			ref := mustRef(t, strings.TrimPrefix(us.URL, "http://")+"/app")
			err := s.PushBlob(context.Background(), ref, desc, bytes.NewReader(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				if us.cancelled != 1 || len(us.blobs) != 0 {
					t.Fatalf("failed upload: %d cancelled, %d blobs stored", us.cancelled, len(us.blobs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(us.blobs[desc.Digest], data) || us.patches != tt.wantPatches {
				t.Fatalf("stored %d bytes in %d patches", len(us.blobs[desc.Digest]), us.patches)
			}
			ok, err := s.BlobExists(context.Background(), ref, desc)
			if err != nil || !ok {
				t.Fatalf("BlobExists = %v, %v", ok, err)
			}
			mounted, err := s.MountBlob(context.Background(), ref, "other/repo", desc)
			if err != nil || !mounted {
				t.Fatalf("MountBlob existing = %v, %v", mounted, err)
			}
			missing := ocispec.Descriptor{Digest: digest.FromString("missing"), Size: 7}
			mounted, err = s.MountBlob(context.Background(), ref, "other/repo", missing)
			if err != nil || mounted || us.cancelled != 1 {
				t.Fatalf("MountBlob missing = %v, %v (cancelled %d)", mounted, err, us.cancelled)
			}
			if ok, err := s.BlobExists(context.Background(), ref, missing); err != nil || ok {
				t.Fatalf("BlobExists missing = %v, %v", ok, err)
			}
		})
	}
}

func TestPushManifest(t *testing.T) {
	t.Parallel()
	us := newUploadServer(t, false)
	c := testClient(t, Options{})
	s := c.Session(nil)
	host := strings.TrimPrefix(us.URL, "http://")
	body := []byte(`{"schemaVersion":2}`)
	want := digest.FromBytes(body)
	d, err := s.PushManifest(context.Background(), mustRef(t, host+"/app:v2"), ocispec.MediaTypeImageManifest, body)
	if err != nil || d != want || !bytes.Equal(us.manifests["v2"], body) {
		t.Fatalf("by tag: %s, %v", d, err)
	}
	if _, err := s.PushManifest(context.Background(), mustRef(t, host+"/app@"+want.String()), ocispec.MediaTypeImageManifest, body); err != nil || us.manifests[want.String()] == nil {
		t.Fatalf("by digest: %v", err)
	}
	other := digest.FromString("other")
	if _, err := s.PushManifest(context.Background(), mustRef(t, host+"/app@"+other.String()), ocispec.MediaTypeImageManifest, body); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("mismatched digest reference: %v", err)
	}
}

func TestTagsPagination(t *testing.T) {
	t.Parallel()
	all := []string{"a", "b", "c", "d", "e"}
	fs := newFaultServer(t, false)
	fs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/tags/list") {
			return false
		}
		start := 0
		if last := r.URL.Query().Get("last"); last != "" {
			for i, tag := range all {
				if tag == last {
					start = i + 1
				}
			}
		}
		end := min(start+2, len(all))
		if end < len(all) {
			w.Header().Set("Link", fmt.Sprintf(`</v2/app/tags/list?n=2&last=%s>; rel="next"`, all[end-1]))
		}
		fmt.Fprintf(w, `{"name":"app","tags":["%s"]}`, strings.Join(all[start:end], `","`))
		return true
	}
	tags, err := testClient(t, Options{}).Session(nil).Tags(context.Background(), mustRef(t, fs.host()+"/app"))
	if err != nil || strings.Join(tags, ",") != "a,b,c,d,e" {
		t.Fatalf("Tags = %v, %v", tags, err)
	}
	if got := nextLink([]string{`<http://x/a?b=1>; rel="prev", </next?last=z>; rel=next`}); got != "/next?last=z" {
		t.Errorf("nextLink = %q", got)
	}
}

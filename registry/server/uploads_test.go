package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestChunkedUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := bytes.Repeat([]byte("chunky "), 3000)
	d := digest.FromBytes(content)
	r := e.do("POST", "/v2/r/blobs/uploads/", nil).want(t, 202, "")
	loc := r.header.Get("Location")
	if r.header.Get("Range") != "0-0" || r.header.Get("Docker-Upload-UUID") == "" {
		t.Fatalf("POST headers %v", r.header)
	}
	off := 0
	for off < len(content) {
		end := min(off+5000, len(content))
		r = e.do("PATCH", loc, content[off:end], "Content-Range", fmt.Sprintf("%d-%d", off, end-1),
			"Content-Type", "application/octet-stream").want(t, 202, "")
		if got, want := r.header.Get("Range"), fmt.Sprintf("0-%d", end-1); got != want {
			t.Fatalf("Range after chunk = %q, want %q", got, want)
		}
		loc = r.header.Get("Location")
		off = end
	}
	st := e.do("GET", loc, nil).want(t, 204, "")
	if st.header.Get("Range") != fmt.Sprintf("0-%d", len(content)-1) {
		t.Fatalf("status Range = %q", st.header.Get("Range"))
	}
	r = e.do("PUT", loc+"?digest="+d.String(), nil).want(t, 201, "")
	if r.header.Get("Docker-Content-Digest") != d.String() || r.header.Get("Location") != "/v2/r/blobs/"+d.String() {
		t.Fatalf("PUT headers %v", r.header)
	}
	if got := e.do("GET", "/v2/r/blobs/"+d.String(), nil).body; !bytes.Equal(got, content) {
		t.Fatal("content differs")
	}
	e.do("GET", loc, nil).want(t, 404, codeBlobUploadUnknown)
}

func TestOutOfOrderChunk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	loc := e.do("POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
	e.do("PATCH", loc, []byte("abcd"), "Content-Range", "0-3").want(t, 202, "")
	for _, cr := range []string{"2-5", "5-8", "0-3"} {
		r := e.do("PATCH", loc, []byte("efgh"), "Content-Range", cr).want(t, 416, codeBlobUploadInvalid)
		if r.header.Get("Range") != "0-3" || r.header.Get("Location") == "" {
			t.Fatalf("416 headers %v", r.header)
		}
	}
	// A Content-Range that disagrees with the body length is refused too.
	e.do("PATCH", loc, []byte("efgh"), "Content-Range", "4-9").want(t, 416, codeBlobUploadInvalid)
	// The session survives and goes on where it was.
	e.do("PATCH", loc, []byte("efgh"), "Content-Range", "4-7").want(t, 202, "")
	d := digest.FromString("abcdefgh")
	e.do("PUT", loc+"?digest="+d.String(), nil).want(t, 201, "")
}

func TestStreamedUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := []byte(strings.Repeat("stream", 10000))
	loc := e.do("POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
	r := e.do("PATCH", loc, content).want(t, 202, "")
	d := digest.FromBytes(content)
	e.do("PUT", r.header.Get("Location")+"?digest="+d.String(), nil).want(t, 201, "")
	e.do("HEAD", "/v2/r/blobs/"+d.String(), nil).want(t, 200, "")
}

func TestUploadCancelAndMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	loc := e.do("POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
	e.do("PATCH", loc, []byte("data")).want(t, 202, "")
	e.do("DELETE", loc, nil).want(t, 204, "")
	e.do("GET", loc, nil).want(t, 404, codeBlobUploadUnknown)
	e.do("DELETE", loc, nil).want(t, 404, codeBlobUploadUnknown)

	loc = e.do("POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
	wrong := digest.FromString("something else")
	e.do("PUT", loc+"?digest="+wrong.String(), []byte("data")).want(t, 400, codeDigestInvalid)
	e.do("HEAD", "/v2/r/blobs/"+wrong.String(), nil).want(t, 404, "")
	e.do("PUT", loc+"?digest=notadigest", nil).want(t, 404, codeBlobUploadUnknown)
	// Nothing of either upload is left in storage.
	for _, dir := range []string{"uploads", "data", "blobs"} {
		if ents, _ := os.ReadDir(filepath.Join(e.root, dir)); len(ents) != 0 {
			t.Errorf("%s/ not empty: %v", dir, ents)
		}
	}
	// Upload ids are checked before touching storage, and scoped to their repository.
	e.do("GET", "/v2/r/blobs/uploads/..", nil).want(t, 404, codeBlobUploadUnknown)
	loc = e.do("POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
	e.do("GET", strings.Replace(loc, "/v2/r/", "/v2/other/", 1), nil).want(t, 404, codeBlobUploadUnknown)
}

func TestCrossRepositoryMount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.pushBlob("src/repo", []byte("shared layer"))
	r := e.do("POST", "/v2/dst/repo/blobs/uploads/?mount="+d.String()+"&from=src/repo", nil).want(t, 201, "")
	if r.header.Get("Location") != "/v2/dst/repo/blobs/"+d.String() {
		t.Fatalf("mount Location %q", r.header.Get("Location"))
	}
	e.do("GET", "/v2/dst/repo/blobs/"+d.String(), nil).want(t, 200, "")
	// Unknown blob, missing source or no source: an ordinary upload session.
	missing := digest.FromString("missing")
	for _, q := range []string{"?mount=" + missing.String() + "&from=src/repo", "?mount=" + d.String() + "&from=nowhere", "?mount=" + d.String()} {
		r := e.do("POST", "/v2/third/blobs/uploads/"+q, nil).want(t, 202, "")
		if !strings.HasPrefix(r.header.Get("Location"), "/v2/third/blobs/uploads/") {
			t.Fatalf("fallback Location %q", r.header.Get("Location"))
		}
	}
	e.do("HEAD", "/v2/third/blobs/"+d.String(), nil).want(t, 404, "")
}

// Two registry processes over one storage serve the chunks of one upload
// between them.
func TestUploadAcrossProcesses(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	b := newEnvAt(t, a.root)
	content := []byte(strings.Repeat("0123456789", 500))
	loc := a.do("POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
	envs := []*env{a, b}
	for i := 0; i < 5; i++ {
		chunk := content[i*1000 : (i+1)*1000]
		envs[i%2].do("PATCH", loc, chunk, "Content-Range", fmt.Sprintf("%d-%d", i*1000, i*1000+999)).want(t, 202, "")
	}
	d := digest.FromBytes(content)
	b.do("PUT", loc+"?digest="+d.String(), nil).want(t, 201, "")
	if got := a.do("GET", "/v2/r/blobs/"+d.String(), nil).body; !bytes.Equal(got, content) {
		t.Fatal("content differs")
	}
}

func TestConcurrentSameBlobPushes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := []byte(strings.Repeat("same", 50000))
	d := digest.FromBytes(content)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("r%d", i%2)
			e.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content).want(t, 201, "")
		}()
	}
	wg.Wait()
	for _, repo := range []string{"r0", "r1"} {
		if got := e.do("GET", "/v2/"+repo+"/blobs/"+d.String(), nil).body; !bytes.Equal(got, content) {
			t.Fatalf("%s: content differs", repo)
		}
	}
}

func TestPurgeUploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	loc := e.do("POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
	n, err := PurgeUploads(t.Context(), e.srv.st.d, time.Now().Add(-time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("purge of fresh uploads = %d, %v", n, err)
	}
	n, err = PurgeUploads(t.Context(), e.srv.st.d, time.Now().Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
	e.do("GET", loc, nil).want(t, 404, codeBlobUploadUnknown)
}

// TestUploadOneWriter: a second PATCH of an upload while the first is
// still streaming its chunk (a client retrying on another replica) is
// answered 416 with the committed range; the upload then completes with
// the first chunk's bytes, and only with them.
func TestUploadOneWriter(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	b := newEnvAt(t, a.root) // another registry process over the same storage
	loc := a.do("POST", "/v2/one/writer/blobs/uploads/", nil).want(t, 202, "").header.Get("Location")
	first, other := bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 1<<20)
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(t.Context(), "PATCH", a.url+loc, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(first))
	req.Header.Set("Content-Range", fmt.Sprintf("0-%d", len(first)-1))
	done := make(chan *http.Response, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		res.Body.Close()
		done <- res
	}()
	pw.Write(first[:len(first)/2])
	lock := filepath.Join(a.root, "uploadlocks", loc[strings.LastIndex(loc, "/")+1:])
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(lock); err == nil {
			break // the first writer holds the lock, its chunk half sent
		} else if time.Now().After(deadline) {
			t.Fatalf("first writer never locked the upload: %v", err)
		}
	}
	r := b.do("PATCH", loc, other, "Content-Range", fmt.Sprintf("0-%d", len(other)-1)).want(t, 416, codeBlobUploadInvalid)
	if r.header.Get("Range") != "0-0" || r.header.Get("Location") != loc {
		t.Errorf("416 headers: Range %q Location %q", r.header.Get("Range"), r.header.Get("Location"))
	}
	pw.Write(first[len(first)/2:])
	pw.Close()
	if res := <-done; res == nil || res.StatusCode != 202 {
		t.Fatalf("first writer: %v", res)
	}
	d := digest.FromBytes(first)
	b.do("PUT", loc+"?digest="+d.String(), nil).want(t, 201, "")
	if got := a.do("GET", "/v2/one/writer/blobs/"+d.String(), nil).want(t, 200, "").body; !bytes.Equal(got, first) {
		t.Fatal("blob bytes differ from the first writer's")
	}
	if names, _ := os.ReadDir(filepath.Join(a.root, "uploadlocks")); len(names) != 0 {
		t.Fatalf("locks left: %v", names)
	}
}

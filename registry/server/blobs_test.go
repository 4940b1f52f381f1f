package server

import (
	"bytes"
	"crypto/sha512"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestBase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/v2/", nil).want(t, 200, "")
	if got := r.header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
		t.Fatalf("Docker-Distribution-API-Version = %q", got)
	}
	e.do("GET", "/v3/", nil).want(t, 404, codeUnsupported)
}

func TestBlobGetHeadRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := []byte("0123456789abcdefghij")
	d := e.pushBlob("a/b", content)
	size := len(content)
	tests := []struct {
		name, method, rng string
		status            int
		body, contentRng  string
	}{
		{"get", "GET", "", 200, string(content), ""},
		{"head", "HEAD", "", 200, "", ""},
		{"range", "GET", "bytes=5-9", 206, "56789", "bytes 5-9/20"},
		{"open range", "GET", "bytes=15-", 206, "fghij", "bytes 15-19/20"},
		{"suffix", "GET", "bytes=-3", 206, "hij", "bytes 17-19/20"},
		{"past end clipped", "GET", "bytes=18-100", 206, "ij", "bytes 18-19/20"},
		{"unsatisfiable", "GET", "bytes=20-", 416, "", "bytes */20"},
		{"multi range whole", "GET", "bytes=0-1,3-4", 200, string(content), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, "/v2/a/b/blobs/"+d.String(), nil, "Range", tc.rng)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
			if r.status == 416 {
				if r.header.Get("Content-Range") != tc.contentRng {
					t.Fatalf("Content-Range %q", r.header.Get("Content-Range"))
				}
				return
			}
			if string(r.body) != tc.body {
				t.Fatalf("body %q, want %q", r.body, tc.body)
			}
			if r.header.Get("Content-Range") != tc.contentRng {
				t.Fatalf("Content-Range %q, want %q", r.header.Get("Content-Range"), tc.contentRng)
			}
			if r.header.Get("Docker-Content-Digest") != d.String() {
				t.Fatalf("Docker-Content-Digest %q", r.header.Get("Docker-Content-Digest"))
			}
			if tc.method == "HEAD" && r.header.Get("Content-Length") != "20" {
				t.Fatalf("HEAD Content-Length %q, want %d", r.header.Get("Content-Length"), size)
			}
		})
	}
}

func TestBlobUnknownAndScoped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.pushBlob("owner/private", []byte("secret layer"))
	// The same digest in another repository is unknown there: repositories
	// only read blobs pushed or mounted into them.
	e.do("GET", "/v2/other/repo/blobs/"+d.String(), nil).want(t, 404, codeBlobUnknown)
	e.do("GET", "/v2/owner/private/blobs/"+digest.FromString("nope").String(), nil).want(t, 404, codeBlobUnknown)
	e.do("GET", "/v2/owner/private/blobs/sha256:xyz", nil).want(t, 400, codeDigestInvalid)
}

func TestBlobDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.pushBlob("r", []byte("to delete"))
	e.do("DELETE", "/v2/r/blobs/"+d.String(), nil).want(t, 202, "")
	e.do("HEAD", "/v2/r/blobs/"+d.String(), nil).want(t, 404, "")
	e.do("DELETE", "/v2/r/blobs/"+d.String(), nil).want(t, 404, codeBlobUnknown)
}

func TestInvalidNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{"UPPER/case", "a..b", "-lead", "trail-", "a/_x", strings.Repeat("a", 256)} {
		t.Run(name[:min(len(name), 12)], func(t *testing.T) {
			e.do("GET", "/v2/"+name+"/tags/list", nil).want(t, 400, codeNameInvalid)
			e.do("POST", "/v2/"+name+"/blobs/uploads/", nil).want(t, 400, codeNameInvalid)
		})
	}
}

func TestBlobSHA512(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := bytes.Repeat([]byte("x"), 1000)
	sum := sha512.Sum512(content)
	d := digest.NewDigestFromBytes(digest.SHA512, sum[:])
	loc := e.do("POST", "/v2/r/blobs/uploads/", nil).want(t, 202, "").header.Get("Location")
	e.do("PATCH", loc, content[:400], "Content-Range", "0-399").want(t, 202, "")
	e.do("PUT", loc+"?digest="+d.String(), content[400:], "Content-Range", "400-999").want(t, 201, "")
	r := e.do("GET", "/v2/r/blobs/"+d.String(), nil).want(t, 200, "")
	if !bytes.Equal(r.body, content) {
		t.Fatal("sha512 blob content differs")
	}
	// Wrong sha512: rejected and nothing linked.
	bad := digest.NewDigestFromBytes(digest.SHA512, make([]byte, 64))
	e.do("POST", "/v2/r/blobs/uploads/?digest="+bad.String(), content).want(t, http.StatusBadRequest, codeDigestInvalid)
	e.do("HEAD", "/v2/r/blobs/"+bad.String(), nil).want(t, 404, "")
}

package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"berth/errdefs"
	"berth/remote/credentials"
)

// cutAfter answers a blob GET with the full Content-Length but only n
// bytes of body, then drops the connection.
func cutAfter(w http.ResponseWriter, data []byte, n int) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", len(data))
	buf.Write(data[:n])
	buf.Flush()
}

func TestFetchBlobResume(t *testing.T) {
	t.Parallel()
	data := randomBytes(t, 8<<20)
	tests := []struct {
		name        string
		cuts        int  // connections cut before a clean answer
		step        int  // the nth cut happens after n*step bytes
		ignoreRange bool // answer 200 with the whole blob to Range requests
		offset      int64
		wantErr     bool
	}{
		{name: "clean"},
		{name: "offset", offset: 12345},
		{name: "one cut", cuts: 1},
		{name: "three cuts", cuts: 3},
		{name: "range ignored", cuts: 2, ignoreRange: true},
		{name: "offset range ignored", offset: 1000, ignoreRange: true},
		{name: "too many cuts", cuts: 10, wantErr: true},
		// Progress between failures renews the retry budget.
		{name: "many cuts far apart", cuts: 6, step: 1200000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFaultServer(t, false)
			desc := fs.addBlob(data)
			var served atomic.Int64
			fs.hook = func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/blobs/") {
					return false
				}
				n := served.Add(1)
				if n <= int64(tt.cuts) {
					step := tt.step
					if step == 0 {
						step = 100000
					}
					cutAfter(w, data, int(n)*step)
					return true
				}
				if tt.ignoreRange {
					r.Header.Del("Range")
				}
				return false
			}
			s := testClient(t, Options{MaxRetries: 4}).Session(nil)
			rc, err := s.FetchBlob(context.Background(), mustRef(t, fs.host()+"/app"), desc, tt.offset)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if tt.wantErr {
				if err == nil {
					t.Fatal("read succeeded after more cuts than retries")
				}
				return
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, data[tt.offset:]) {
				t.Fatalf("got %d bytes, want %d from offset %d (content differs)", len(got), len(data)-int(tt.offset), tt.offset)
			}
		})
	}
}

func TestVerifyReader(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, false)
	data := randomBytes(t, 4096)
	desc := fs.addBlob(data)
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"exact", data, nil},
		{"short", data[:4000], io.ErrUnexpectedEOF},
		{"long", append(append([]byte{}, data...), 1), errdefs.ErrInvalidArgument},
		{"corrupt", append([]byte{data[0] ^ 1}, data[1:]...), errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		r, err := VerifyReader(bytes.NewReader(tt.in), desc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, r)
		if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.err)
		}
	}
	// A registry that sends a longer blob than the descriptor says.
	fs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			_, _ = w.Write(append(append([]byte{}, data...), "extra"...))
			return true
		}
		return false
	}
	rc, err := testClient(t, Options{}).Session(nil).FetchBlob(context.Background(), mustRef(t, fs.host()+"/app"), desc, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("overlong blob: %v", err)
	}
}

func TestRetryTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		failures []int
		retries  int
		wantErr  error
	}{
		{"503 then ok", []int{503, 503}, 4, nil},
		{"429 retry-after then ok", []int{429}, 4, nil},
		{"502 504", []int{502, 504}, 4, nil},
		{"exhausted", []int{503, 503, 503}, 2, errdefs.ErrUnavailable},
		{"500 is final", []int{500}, 4, errdefs.ErrUnavailable},
		{"404 is final", []int{404}, 4, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFaultServer(t, false)
			desc := fs.addBlob([]byte("hello"))
			var n atomic.Int64
			fs.hook = func(w http.ResponseWriter, r *http.Request) bool {
				i := int(n.Add(1)) - 1
				if i < len(tt.failures) {
					if tt.failures[i] == 429 {
						w.Header().Set("Retry-After", "0")
					}
					w.WriteHeader(tt.failures[i])
					return true
				}
				return false
			}
			// Plain HTTP from the start: the https probe would count as a request.
			c := testClient(t, Options{MaxRetries: tt.retries})
			c.plainHTTP[fs.host()] = true
			rc, err := c.Session(nil).FetchBlob(context.Background(), mustRef(t, fs.host()+"/app"), desc, 0)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if b, err := io.ReadAll(rc); err != nil || string(b) != "hello" {
				t.Fatalf("got %q, %v", b, err)
			}
			if got := int(n.Load()); got != len(tt.failures)+1 {
				t.Errorf("%d requests, want %d", got, len(tt.failures)+1)
			}
		})
	}
}

func TestRedirectDropsAuthorization(t *testing.T) {
	t.Parallel()
	data := randomBytes(t, 50000)
	var leaked atomic.Value
	leaked.Store("")
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"))
		http.ServeContent(w, r, "", timeZero, bytes.NewReader(data))
	}))
	t.Cleanup(store.Close)
	fs := newFaultServer(t, false)
	desc := fs.addBlob(data)
	fs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED")
			return true
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			// Another port on loopback is another host to the client.
			http.Redirect(w, r, strings.Replace(store.URL, "127.0.0.1", "localhost", 1)+"/presigned?sig=abc", http.StatusTemporaryRedirect)
			return true
		}
		return false
	}
	s := testClient(t, Options{}).Session(staticCreds(credentials.AuthConfig{Username: "u", Password: "p"}))
	rc, err := s.FetchBlob(context.Background(), mustRef(t, fs.host()+"/app"), desc, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data[100:]) {
		t.Fatalf("redirected blob: %d bytes, %v", len(got), err)
	}
	if a := leaked.Load().(string); a != "" {
		t.Fatalf("blob store received Authorization %q", a)
	}
}

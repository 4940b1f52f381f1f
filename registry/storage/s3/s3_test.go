package s3

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
	"berth/registry/storage/storagetest"
)

// The tests run against versitygw (github.com/versity/versitygw), a real
// S3 server over a POSIX directory, started on loopback: found on PATH or at
// $VERSITYGW. Install it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
const (
	testAccess = "berthtestaccess"
	testSecret = "berthtestsecret"
	testBucket = "berth"
)

// s3Server is a running versitygw.
type s3Server struct {
	url  string
	root string
	cmd  *exec.Cmd
}

var (
	serverOnce sync.Once
	gw         *s3Server
	serverErr  error
	serverSkip string
)

// startServer starts one versitygw for the test binary; it exits with it.
func startServer(t *testing.T) *s3Server {
	t.Helper()
	serverOnce.Do(func() {
		bin := os.Getenv("VERSITYGW")
		if bin == "" {
			bin, _ = exec.LookPath("versitygw")
		}
		if home, err := os.UserHomeDir(); bin == "" && err == nil {
			// Where `go install` puts it when GOBIN is not on PATH.
			if p := filepath.Join(home, "go", "bin", "versitygw"); fileExists(p) {
				bin = p
			}
		}
		if bin == "" {
			serverSkip = "versitygw not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0, or set $VERSITYGW)"
			return
		}
		gw, serverErr = runServer(bin)
	})
	if serverSkip != "" {
		t.Skip(serverSkip)
	}
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return gw
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func runServer(bin string) (*s3Server, error) {
	root, err := os.MkdirTemp("", "berth-s3-")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(root, testBucket), 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	var log bytes.Buffer
	cmd := exec.Command(bin, "--access", testAccess, "--secret", testSecret, "--port", addr, "--quiet", "posix", root)
	cmd.Stdout, cmd.Stderr = &log, &log
	// Dies with the test binary, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &s3Server{url: "http://" + addr, root: root, cmd: cmd}, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	os.RemoveAll(root)
	return nil, fmt.Errorf("versitygw did not start: %s", log.String())
}

func randomPrefix() string {
	var b [8]byte
	rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

// newDriver returns a driver over a fresh prefix of the bucket at endpoint.
func newDriver(t *testing.T, endpoint string, mod func(*Config)) *Driver {
	t.Helper()
	cfg := Config{Bucket: testBucket, Prefix: randomPrefix(), Endpoint: endpoint, PathStyle: true,
		AccessKey: testAccess, SecretKey: testSecret, PartSize: minPart}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriver(t, srv.url, nil) })
}

// faulty sits between the driver and the server and breaks requests: every
// n-th one is throttled (503 SlowDown), every m-th fails (500), and every
// k-th GET body is cut in the middle.
type faulty struct {
	proxy      *httputil.ReverseProxy
	throttle   int64
	fail       int64
	cut        int64
	n, gets    atomic.Int64
	throttled  atomic.Int64
	cutBodies  atomic.Int64
	alwaysDown atomic.Bool
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.n.Add(1)
	s3err := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
	}
	switch {
	case f.alwaysDown.Load() || (f.throttle > 0 && n%f.throttle == 0):
		f.throttled.Add(1)
		s3err(http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	case f.fail > 0 && n%f.fail == 0:
		s3err(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "" && f.cut > 0 && f.gets.Add(1)%f.cut == 0 {
		f.cutBodies.Add(1)
		f.proxy.ServeHTTP(&cutWriter{ResponseWriter: w, left: 3000}, r)
		return
	}
	f.proxy.ServeHTTP(w, r)
}

// cutWriter lets left body bytes through, then breaks the connection.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.left <= 0 || len(b) > c.left {
		if c.left > 0 {
			c.ResponseWriter.Write(b[:c.left])
			c.left = 0
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= len(b)
	return c.ResponseWriter.Write(b)
}

func newFaulty(t *testing.T, target string, throttle, fail, cut int64) (*faulty, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &faulty{proxy: httputil.NewSingleHostReverseProxy(u), throttle: throttle, fail: fail, cut: cut}
	f.proxy.ErrorLog = nil
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts.URL
}

// TestThrottlingAndErrors runs the conformance suite through a proxy that
// throttles every 4th request, fails every 7th and cuts every 3rd object
// body: retries and resumed reads hide all of it.
func TestThrottlingAndErrors(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	f, endpoint := newFaulty(t, srv.url, 4, 7, 3)
	// Checked once the suite's parallel subtests are done.
	t.Cleanup(func() {
		if f.throttled.Load() == 0 || f.cutBodies.Load() == 0 {
			t.Errorf("the proxy broke nothing: %d throttled, %d cut", f.throttled.Load(), f.cutBodies.Load())
		}
		t.Logf("%d requests, %d throttled, %d bodies cut", f.n.Load(), f.throttled.Load(), f.cutBodies.Load())
	})
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		return newDriver(t, endpoint, func(c *Config) { c.MaxAttempts, c.MaxBackoff = 10, 100*time.Millisecond })
	})
}

// TestUnavailable: a store that only throttles gives up after the attempts
// with an error of kind Unavailable naming the cause, quickly.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	f, endpoint := newFaulty(t, srv.url, 0, 0, 0)
	d := newDriver(t, endpoint, func(c *Config) { c.MaxAttempts, c.MaxBackoff = 3, 100*time.Millisecond })
	f.alwaysDown.Store(true)
	start := time.Now()
	err := d.Put(t.Context(), "x", []byte("y"))
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("Put against a throttling store = %v", err)
	}
	if n := f.throttled.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
	bad := newDriver(t, srv.url, nil)
	bad.cfg.Bucket = "no-such-bucket"
	if _, err := bad.Stat(t.Context(), "x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing bucket = %v", err)
	}
	if _, err := New(t.Context(), Config{Bucket: testBucket, Endpoint: srv.url, PathStyle: true, AccessKey: testAccess, SecretKey: "wrong"}); !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("wrong secret = %v", err)
	}
}

// TestLargeAppend covers the paths small objects do not take: multipart
// writes over several parts, and appends to objects past the 5 MiB part
// minimum, which the server copies.
func TestLargeAppend(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	d := newDriver(t, srv.url, nil)
	ctx := t.Context()
	chunk := func(i int, n int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, n) }
	want := append(chunk(0, 12<<20), chunk(1, 7<<20)...)
	w, err := d.Writer(ctx, "big", false)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(want[:12<<20])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for i, p := range [][]byte{want[12<<20:], nil} {
		a, err := d.Writer(ctx, "big", true)
		if err != nil {
			t.Fatal(err)
		}
		if a.Size() != 12<<20+int64(i)*(7<<20) {
			t.Fatalf("append writer size %d", a.Size())
		}
		a.Write(p)
		if err := a.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A cancelled append leaves the object as it was.
	a, err := d.Writer(ctx, "big", true)
	if err != nil {
		t.Fatal(err)
	}
	a.Write(chunk(2, 6<<20))
	if err := a.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := d.Get(ctx, "big")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(want))
	}
	r, err := d.Reader(ctx, "big", int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := io.Copy(io.Discard, r); n != 0 {
		t.Fatalf("read at the end: %d bytes", n)
	}
	r.Close()
}

func TestRedirect(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	for _, on := range []bool{false, true} {
		d := newDriver(t, srv.url, func(c *Config) { c.Redirect = on; c.RedirectExpiry = time.Minute })
		if err := d.Put(t.Context(), "data/obj", []byte("presigned content")); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequestWithContext(t.Context(), "GET", "/v2/x/blobs/sha256:00", nil)
		u, err := d.RedirectURL(req, "data/obj")
		if err != nil || (u != "") != on {
			t.Fatalf("redirect %v: %q %v", on, u, err)
		}
		if !on {
			continue
		}
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "presigned content" {
			t.Fatalf("GET pre-signed URL: %d %q", res.StatusCode, body)
		}
		res, err = http.Get(strings.Replace(u, "X-Amz-Signature=", "X-Amz-Signature=0", 1))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("tampered URL: %d", res.StatusCode)
		}
	}
}

// TestMain stops the shared server and removes its directory.
func TestMain(m *testing.M) {
	code := m.Run()
	if gw != nil {
		gw.cmd.Process.Kill()
		gw.cmd.Wait()
		os.RemoveAll(gw.root)
	}
	os.Exit(code)
}

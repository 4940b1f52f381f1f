// Package bench compares berth's registry with the CNCF registry
// (/usr/bin/docker-registry, Debian package docker-registry) on loopback:
// blob upload and download throughput and manifest GETs per second.
//
//	go test -run '^$' -bench . -benchtime 20x ./registry/bench/
//
// The CNCF registry runs as a child process with filesystem storage in a
// temporary directory; its sub-benchmarks are skipped when it is missing.
// Timings are reported, never asserted.
package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/registry"
	"berth/registry/storage/fs"
)

const cncfBinary = "/usr/bin/docker-registry"

type target struct {
	name string
	url  string
}

func berthTarget(b *testing.B) target {
	b.Helper()
	d, err := fs.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	h, err := registry.NewHandler(context.Background(), registry.DefaultConfig(), d, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(h)
	b.Cleanup(ts.Close)
	return target{"berth", ts.URL}
}

func cncfTarget(b *testing.B) target { return cncfServe(b, "") }

// cncfServe runs the CNCF registry with extra top-level YAML (a proxy
// section) until the benchmark ends.
func cncfServe(b *testing.B, extra string) target {
	b.Helper()
	if _, err := os.Stat(cncfBinary); err != nil {
		b.Skip("CNCF registry not installed at " + cncfBinary)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := b.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n%s",
		filepath.Join(dir, "data"), addr, extra)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(cncfBinary, "serve", cfgPath)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	url := "http://" + addr
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get(url + "/v2/"); err == nil {
			res.Body.Close()
			return target{"cncf", url}
		}
	}
	b.Fatal("CNCF registry did not start")
	return target{}
}

func targets(b *testing.B, fn func(b *testing.B, t target)) {
	for _, tc := range []struct {
		name string
		mk   func(*testing.B) target
	}{{"berth", berthTarget}, {"cncf", cncfTarget}} {
		b.Run(tc.name, func(b *testing.B) { fn(b, tc.mk(b)) })
	}
}

func do(b *testing.B, method, url string, body io.Reader, hdr ...string) *http.Response {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// upload pushes content as POST then one PUT, the way most clients do.
func upload(b *testing.B, base, repo string, content []byte) digest.Digest {
	d := digest.FromBytes(content)
	res := do(b, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
	res.Body.Close()
	loc, err := res.Location()
	if err != nil || res.StatusCode != 202 {
		b.Fatalf("POST upload: %d %v", res.StatusCode, err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	res = do(b, "PUT", loc.String(), bytes.NewReader(content), "Content-Type", "application/octet-stream")
	res.Body.Close()
	if res.StatusCode != 201 {
		b.Fatalf("PUT upload: %d", res.StatusCode)
	}
	return d
}

const blobSize = 16 << 20

func randomBlob() []byte {
	buf := make([]byte, blobSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], r.Uint64())
	}
	return buf
}

func BenchmarkBlobUpload(b *testing.B) {
	blob := randomBlob()
	targets(b, func(b *testing.B, t target) {
		b.SetBytes(blobSize)
		for i := 0; b.Loop(); i++ {
			binary.LittleEndian.PutUint64(blob, uint64(i)+uint64(time.Now().UnixNano()))
			upload(b, t.url, "bench/up", blob)
		}
	})
}

func BenchmarkBlobDownload(b *testing.B) {
	blob := randomBlob()
	targets(b, func(b *testing.B, t target) {
		d := upload(b, t.url, "bench/down", blob)
		b.SetBytes(blobSize)
		for b.Loop() {
			res := do(b, "GET", t.url+"/v2/bench/down/blobs/"+d.String(), nil)
			n, err := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err != nil || n != blobSize {
				b.Fatalf("GET blob: %d bytes, %v", n, err)
			}
		}
	})
}

func BenchmarkManifestGet(b *testing.B) {
	targets(b, func(b *testing.B, t target) {
		cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cd := upload(b, t.url, "bench/m", cfg)
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, cd, len(cfg))
		res := do(b, "PUT", t.url+"/v2/bench/m/manifests/latest", bytes.NewReader([]byte(m)), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		res.Body.Close()
		if res.StatusCode != 201 {
			b.Fatalf("PUT manifest: %d", res.StatusCode)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res := do(b, "GET", t.url+"/v2/bench/m/manifests/latest", nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("GET manifest: %d", res.StatusCode)
					return
				}
			}
		})
	})
}

package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"berth/registry"
	"berth/registry/storage/fs"
)

// mirrorImage is an image in the upstream: four 16 MiB layers.
type mirrorImage struct {
	repo  string
	blobs []digest.Digest
	bytes int64
}

func pushMirrorImage(b *testing.B, up string) mirrorImage {
	img := mirrorImage{repo: "bench/img"}
	blob := randomBlob()
	var layers []string
	for i := range 4 {
		binary.LittleEndian.PutUint64(blob, uint64(i)+1)
		d := upload(b, up, img.repo, blob)
		img.blobs = append(img.blobs, d)
		img.bytes += blobSize
		layers = append(layers, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, d, blobSize))
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := upload(b, up, img.repo, cfg)
	img.blobs = append(img.blobs, cd)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		cd, len(cfg), join(layers))
	res := do(b, "PUT", up+"/v2/"+img.repo+"/manifests/v1", bytes.NewReader([]byte(m)), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	res.Body.Close()
	if res.StatusCode != 201 {
		b.Fatalf("PUT manifest: %d", res.StatusCode)
	}
	return img
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// pull fetches the manifest and then the blobs, three at a time as Docker
// does.
func pull(b *testing.B, base string, img mirrorImage) {
	res := do(b, "GET", base+"/v2/"+img.repo+"/manifests/v1", nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		b.Fatalf("GET manifest through %s: %d", base, res.StatusCode)
	}
	var g errgroup.Group
	g.SetLimit(3)
	for _, d := range img.blobs {
		g.Go(func() error {
			res := do(b, "GET", base+"/v2/"+img.repo+"/blobs/"+d.String(), nil)
			defer res.Body.Close()
			vr := d.Verifier()
			if _, err := io.Copy(vr, res.Body); err != nil || res.StatusCode != 200 || !vr.Verified() {
				return fmt.Errorf("GET blob %s: %d %v", d, res.StatusCode, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// berthMirror serves a berth registry whose default mirror is upstream.
func berthMirror(b *testing.B, upstream string) string {
	d, err := fs.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cfg := registry.DefaultConfig()
	cfg.Mirrors = []registry.MirrorConfig{{Namespace: "up", URL: upstream, Default: true}}
	h, err := registry.NewHandler(context.Background(), cfg, d, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(h)
	b.Cleanup(ts.Close)
	return ts.URL
}

func cncfMirror(b *testing.B, upstream string) string {
	return cncfServe(b, "proxy:\n  remoteurl: "+upstream+"\n").url
}

// BenchmarkMirrorPull pulls a 64 MiB image (four layers) through a
// pull-through cache of a loopback berth registry: berth's mirror mode and
// the CNCF registry's proxy mode, cold (a fresh cache each time: the bytes
// come from upstream and are stored) and warm (from the cache).
//
//	go test -run '^$' -bench MirrorPull -benchtime 5x ./registry/bench/
func BenchmarkMirrorPull(b *testing.B) {
	up := berthTarget(b)
	img := pushMirrorImage(b, up.url)
	for _, impl := range []struct {
		name string
		mk   func(*testing.B, string) string
	}{{"berth", berthMirror}, {"cncf", cncfMirror}} {
		b.Run(impl.name+"/cold", func(b *testing.B) {
			b.SetBytes(img.bytes)
			for b.Loop() {
				b.StopTimer()
				url := impl.mk(b, up.url)
				b.StartTimer()
				pull(b, url, img)
			}
		})
		b.Run(impl.name+"/warm", func(b *testing.B) {
			url := impl.mk(b, up.url)
			pull(b, url, img)
			b.SetBytes(img.bytes)
			for b.Loop() {
				pull(b, url, img)
			}
		})
	}
}

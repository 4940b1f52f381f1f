package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// bigImage describes a generated image: layers of incompressible files.
type bigImage struct {
	layers        int
	filesPerLayer int
	fileSize      int64
}

func (b bigImage) bytes() int64 { return int64(b.layers*b.filesPerLayer) * b.fileSize }

// writeArchive streams a legacy-layout archive of the image to w without
// holding it in memory: layer tars first, config and manifest.json last,
// as a loader that needs the manifest first could not take it. It returns
// the image ID.
func (b bigImage) writeArchive(w io.Writer, tag string, seed uint64) (digest.Digest, error) {
	tw := tar.NewWriter(w)
	rng := rand.NewChaCha8([32]byte{byte(seed)})
	var diffIDs []digest.Digest
	var layers []string
	for i := range b.layers {
		size, err := b.layerTar(io.Discard, zeroReader{})
		if err != nil {
			return "", err
		}
		name := fmt.Sprintf("layer%d/layer.tar", i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: fixtureTime}); err != nil {
			return "", err
		}
		h := digest.SHA256.Digester()
		if _, err := b.layerTar(io.MultiWriter(tw, h.Hash()), rng); err != nil {
			return "", err
		}
		diffIDs = append(diffIDs, h.Digest())
		layers = append(layers, name)
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "created": fixtureTime,
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(cfg)
	manifest, err := json.Marshal([]manifestItem{{Config: id.Encoded() + ".json", RepoTags: []string{tag}, Layers: layers}})
	if err != nil {
		return "", err
	}
	for _, f := range []struct {
		name string
		body []byte
	}{{id.Encoded() + ".json", cfg}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: fixtureTime}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.body); err != nil {
			return "", err
		}
	}
	return id, tw.Close()
}

// layerTar writes one layer's tar with file contents from src and returns
// its size; with zeroReader it measures the size the real tar will have.
func (b bigImage) layerTar(w io.Writer, src io.Reader) (int64, error) {
	cw := &countWriter{w: w}
	tw := tar.NewWriter(cw)
	for f := range b.filesPerLayer {
		hdr := &tar.Header{Name: fmt.Sprintf("data/f%03d", f), Mode: 0o644, Size: b.fileSize, ModTime: fixtureTime}
		if f == 0 {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755, ModTime: fixtureTime}); err != nil {
				return 0, err
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return 0, err
		}
		if _, err := io.CopyN(tw, src, b.fileSize); err != nil {
			return 0, err
		}
	}
	err := tw.Close()
	return cw.n, err
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// heapPeak samples the Go heap until stopped and returns the highest
// in-use size seen.
func heapPeak() (stop func() uint64) {
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// TestLoadLargeArchiveFlatMemory loads a 300 MB archive streamed from a
// generator, manifest last, and checks the Go heap stays small: blobs go
// to the content store as they pass, nothing is buffered whole. It runs
// alone (no t.Parallel) so that other tests' allocations do not count.
func TestLoadLargeArchiveFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 600 MB to disk; skipped with -short")
	}
	s := newService(t, drivers[0])
	img := bigImage{layers: 6, filesPerLayer: 10, fileSize: 5 << 20}
	pr, pw := io.Pipe()
	idc := make(chan digest.Digest, 1)
	go func() {
		id, err := img.writeArchive(pw, "big:1", 1)
		idc <- id
		pw.CloseWithError(err)
	}()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := heapPeak()
	got, err := s.LoadImages(context.Background(), pr, LoadOptions{})
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if id := <-idc; len(got) != 1 || got[0].ID != id {
		t.Fatalf("loaded %+v, want %s", got, id)
	}
	grew := int64(peak) - int64(base.HeapInuse)
	t.Logf("archive %d MB; heap in use %d MB before, peak %d MB", img.bytes()>>20, base.HeapInuse>>20, peak>>20)
	if grew > 32<<20 {
		t.Fatalf("loading %d MB grew the heap by %d MB", img.bytes()>>20, grew>>20)
	}
}

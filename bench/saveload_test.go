package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const saveLoadRounds = 5

// BenchmarkSaveLoad times `save -o` of the multi-layer fixture image and
// `load -i` of its archive into a store that does not hold it (the image
// removed, untimed, before each load), beside the floor: copying the
// archive file through the page cache, which both must do at least.
func BenchmarkSaveLoad(b *testing.B) {
	es := startEngines(b)
	layers := multiLayers(b)
	dir := b.TempDir()
	archive := filepath.Join(dir, "multi.tar")
	size := writeDockerArchive(b, archive, multiImage, layers)
	for _, e := range es.all {
		e.must(b, "load", "-i", archive)
		b.Cleanup(func() { e.run(nil, "rmi", multiImage) })
	}
	out := filepath.Join(dir, "out.tar")
	copyFloor := func() float64 { return copyFile(b, archive, out) }
	save := func(i int) float64 {
		if i == len(es.all) {
			return copyFloor()
		}
		defer os.Remove(out)
		return es.all[i].timed(b, "save", "-o", out, multiImage)
	}
	load := func(i int) float64 {
		if i == len(es.all) {
			return copyFloor()
		}
		e := es.all[i]
		e.must(b, "rmi", multiImage)
		return e.timed(b, "load", "-i", archive)
	}
	saveW := fmt.Sprintf("save: %d MB in %d layers", size/1e6, len(layers))
	loadW := fmt.Sprintf("load: %d MB in %d layers, image absent", size/1e6, len(layers))
	for range b.N {
		for _, wl := range []struct {
			name, floor string
			step        func(int) float64
		}{{saveW, "copy of the archive (page cache)", save}, {loadW, "copy of the archive (page cache)", load}} {
			runs := alternate(saveLoadRounds, len(es.all)+1, wl.step)
			for i, e := range es.all {
				r := Result{Workload: wl.name, System: e.name, Runs: runs[i]}
				if i == 0 {
					r.Note = describe(layers) + "; a docker-archive (legacy layout) loaded by every engine"
				}
				record(b, r)
			}
			record(b, Result{Workload: wl.name, System: wl.floor, Floor: true, Runs: runs[len(es.all)]})
			es.recordSkips(b, wl.name)
		}
	}
}

// copyFile copies src to dst without fsync and returns the time taken; dst
// is removed after.
func copyFile(b *testing.B, src, dst string) float64 {
	b.Helper()
	start := time.Now()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(dst)
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds()
}

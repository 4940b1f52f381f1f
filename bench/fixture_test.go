package bench

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/testutil"
)

// The multi-layer fixture, built offline: the busybox root filesystem, then
// host files and random data in the proportions of a real application
// image, about 290 MB in 5 layers. The same bytes on every run on one
// machine (random data from a fixed seed, host files in name order).
const multiImage = "berth-bench/multi:latest"

type fixtureLayer struct {
	name   string
	dir    string // host files of dir, in name order, up to budget; "" is random data
	budget int64
	tar    []byte
	files  int
}

func (l *fixtureLayer) diffID() digest.Digest { return digest.FromBytes(l.tar) }

func multiLayers(b *testing.B) []*fixtureLayer {
	b.Helper()
	busybox, err := os.ReadFile(testutil.BusyboxTar(b))
	if err != nil {
		b.Fatal(err)
	}
	layers := []*fixtureLayer{
		{name: "busybox", tar: busybox},
		{name: "/usr/share", dir: "/usr/share", budget: 60 << 20},
		{name: "random", budget: 64 << 20},
		{name: "/usr/lib", dir: "/usr/lib", budget: 100 << 20},
		{name: "random", budget: 64 << 20},
	}
	for i, l := range layers[1:] {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if l.dir == "" {
			writeRandomFile(b, tw, fmt.Sprintf("payload/random%d", i), l.budget, uint64(i))
			l.files = 1
		} else {
			l.files = writeHostFiles(b, tw, l.dir, l.budget)
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
		l.tar = buf.Bytes()
	}
	return layers
}

var fixtureTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func writeRandomFile(b *testing.B, tw *tar.Writer, name string, size int64, seed uint64) {
	b.Helper()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: fixtureTime}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6265727468))
	block := make([]byte, 1<<20)
	for done := int64(0); done < size; done += int64(len(block)) {
		for i := 0; i+8 <= len(block); i += 8 {
			binary.LittleEndian.PutUint64(block[i:], rng.Uint64())
		}
		if _, err := tw.Write(block[:min(int64(len(block)), size-done)]); err != nil {
			b.Fatal(err)
		}
	}
}

// writeHostFiles adds the regular files of dir, in name order, until
// budget bytes; it returns how many.
func writeHostFiles(b *testing.B, tw *tar.Writer, dir string, budget int64) int {
	b.Helper()
	var paths []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	slices.Sort(paths)
	var n int64
	files := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil || n+int64(len(data)) > budget {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: "payload" + p, Mode: 0o644, Size: int64(len(data)), ModTime: fixtureTime}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
		n += int64(len(data))
		files++
	}
	return files
}

// imageConfig is the image's config JSON for layers.
func imageConfig(b *testing.B, layers []*fixtureLayer) []byte {
	b.Helper()
	img := ocispec.Image{Created: &fixtureTime, Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		RootFS: ocispec.RootFS{Type: "layers"}}
	for _, l := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.diffID())
		img.History = append(img.History, ocispec.History{Created: &fixtureTime, CreatedBy: "berth bench fixture: " + l.name})
	}
	cfg, err := json.Marshal(img)
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// writeDockerArchive writes layers as a `docker save` archive (the legacy
// layout every loader reads: manifest.json, <config>.json,
// <n>/layer.tar) tagged repoTag, and returns its size.
func writeDockerArchive(b *testing.B, path, repoTag string, layers []*fixtureLayer) int64 {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: fixtureTime}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	cfg := imageConfig(b, layers)
	cfgName := digest.FromBytes(cfg).Encoded() + ".json"
	add(cfgName, cfg)
	var paths []string
	for _, l := range layers {
		p := l.diffID().Encoded() + "/layer.tar"
		add(p, l.tar)
		paths = append(paths, p)
	}
	manifest, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{repoTag}, "Layers": paths}})
	if err != nil {
		b.Fatal(err)
	}
	add("manifest.json", manifest)
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

// describe says what the layers hold, for the report's notes.
func describe(layers []*fixtureLayer) string {
	var raw int64
	files := 0
	for _, l := range layers {
		raw += int64(len(l.tar))
		files += l.files
	}
	return fmt.Sprintf("%d layers, %d MB of tar, %d files: busybox, host files (/usr/share, /usr/lib), random data (incompressible), built offline",
		len(layers), raw/1e6, files)
}

// gzipAll compresses each layer as a push does (pgzip, all cores) and
// returns the blobs.
func gzipAll(b *testing.B, layers []*fixtureLayer) [][]byte {
	b.Helper()
	var out [][]byte
	for _, l := range layers {
		var z bytes.Buffer
		zw, err := pgzip.NewWriterLevel(&z, pgzip.DefaultCompression)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(zw, bytes.NewReader(l.tar)); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		out = append(out, z.Bytes())
	}
	return out
}

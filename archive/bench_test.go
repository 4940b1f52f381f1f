package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const (
	benchFiles    = 1000
	benchFileSize = 100 << 10 // 1000 x 100 KiB ≈ 100 MB
)

// benchLayer writes a 100 MB layer of incompressible files to a temp file
// (never to memory) and returns its path and size.
func benchLayer(b *testing.B) (string, int64) {
	b.Helper()
	p := filepath.Join(b.TempDir(), "layer.tar")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{1})
	tw := tar.NewWriter(f)
	buf := make([]byte, benchFileSize)
	for i := range benchFiles {
		if i%100 == 0 {
			hdr := &tar.Header{Name: fmt.Sprintf("d%02d/", i/100), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}
			if err := tw.WriteHeader(hdr); err != nil {
				b.Fatal(err)
			}
		}
		_, _ = rng.Read(buf)
		hdr := &tar.Header{Name: fmt.Sprintf("d%02d/f%04d", i/100, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: benchFileSize, ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return p, st.Size()
}

func applyFile(b *testing.B, root, p string) {
	b.Helper()
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := Apply(context.Background(), root, f, ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkApply(b *testing.B) {
	requireRoot(b)
	p, size := benchLayer(b)
	dir := b.TempDir()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		root := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(root, 0o755); err != nil {
			b.Fatal(err)
		}
		applyFile(b, root, p)
		b.StopTimer()
		if err := os.RemoveAll(root); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkDiff measures a new tree (every file read once) and an
// unchanged copy (whole-second mtimes force a content comparison of every
// file, the worst case of the comparison rules).
func BenchmarkDiff(b *testing.B) {
	requireRoot(b)
	p, size := benchLayer(b)
	lower, upper := b.TempDir(), b.TempDir()
	applyFile(b, lower, p)
	applyFile(b, upper, p)
	for _, bc := range []struct{ name, lower string }{{"added", ""}, {"unchanged", lower}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				if err := Diff(context.Background(), io.Discard, bc.lower, upper, WhiteoutDelete); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

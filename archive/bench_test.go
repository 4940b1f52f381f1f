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

	"golang.org/x/sys/unix"
)

const (
	benchFiles    = 1000
	benchFileSize = 100 << 10 // 1000 x 100 KiB ≈ 100 MB
)

// benchLayer writes a 100 MB layer of incompressible files to a temp file
// (never to memory) and returns its path and size.
func benchLayer(b *testing.B) (string, int64) {
	return benchLayerOf(b, benchFiles, benchFileSize)
}

// benchLayerOf writes a layer of files files of size bytes each, 100 to a
// directory, to a temp file and returns its path and size.
func benchLayerOf(b *testing.B, files, size int) (string, int64) {
	b.Helper()
	p := filepath.Join(b.TempDir(), "layer.tar")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{1})
	tw := tar.NewWriter(f)
	buf := make([]byte, size)
	for i := range files {
		if i%100 == 0 {
			hdr := &tar.Header{Name: fmt.Sprintf("d%03d/", i/100), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}
			if err := tw.WriteHeader(hdr); err != nil {
				b.Fatal(err)
			}
		}
		_, _ = rng.Read(buf)
		hdr := &tar.Header{Name: fmt.Sprintf("d%03d/f%05d", i/100, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: epoch}
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

// BenchmarkApply measures large files (1000 of 100 KiB, bound by data) and
// small ones (10000 of 4 KiB, bound by per-entry syscalls).
func BenchmarkApply(b *testing.B) {
	requireRoot(b)
	for _, bc := range []struct {
		name        string
		files, size int
	}{{"100MB-1000files", benchFiles, benchFileSize}, {"40MB-10000files", 10000, 4 << 10}} {
		b.Run(bc.name, func(b *testing.B) { benchApply(b, bc.files, bc.size) })
	}
}

// benchApply applies a layer into a fresh root per iteration. The roots'
// parent is marked as a top directory (chattr +T) the way the overlay
// snapshotter marks its snapshot directories: on ext4 each root then gets
// a block group of its own, so the figure is Apply's cost and not that of
// ext4 searching past the previous iteration's freed inodes (see
// snapshot/overlay.markTopDir). Filesystems without the flag ignore it.
func benchApply(b *testing.B, files, fileSize int) {
	p, size := benchLayerOf(b, files, fileSize)
	dir := b.TempDir()
	setTopDir(b, dir)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		root := filepath.Join(dir, fmt.Sprintf("root-%d-%d", i, rand.Uint64()))
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

// setTopDir sets FS_TOPDIR_FL (0x20000) on dir where the filesystem has
// inode flags.
func setTopDir(b *testing.B, dir string) {
	b.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS); err == nil {
		_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|0x20000))
	}
}

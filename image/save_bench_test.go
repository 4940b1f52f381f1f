package image

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"berth/content"
	"berth/errdefs"
	"berth/testutil"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkSaveLoad measures save and load throughput on a generated
// 300 MB image of six layers (ten 5 MB incompressible files each), per
// snapshotter. MB/s counts archive bytes. Load includes fsyncing every
// blob and extracting every layer; each load starts from a store without
// the image.
//
//	go test ./image -run '^$' -bench SaveLoad -benchtime 3x
func BenchmarkSaveLoad(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) { benchSaveLoad(b, d) })
	}
}

func benchSaveLoad(b *testing.B, d driverCase) {
	s := newBenchService(b, d)
	ctx := context.Background()
	img := bigImage{layers: 6, filesPerLayer: 10, fileSize: 5 << 20}
	arc := filepath.Join(b.TempDir(), "big.tar")
	f, err := os.Create(arc)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := img.writeArchive(bw, "big:1", 2); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	st, err := os.Stat(arc)
	if err != nil {
		b.Fatal(err)
	}
	load := func() {
		f, err := os.Open(arc)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := s.LoadImages(ctx, f, LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("load", func(b *testing.B) {
		b.SetBytes(st.Size())
		for range b.N {
			b.StopTimer()
			if _, err := s.ImageDelete(ctx, "big:1", DeleteOptions{Force: true}); err != nil && !errdefs.NotFound(err) {
				b.Fatal(err)
			}
			b.StartTimer()
			load()
		}
	})
	if _, err := s.Resolve(ctx, "big:1"); err != nil {
		load()
	}
	b.Run("save", func(b *testing.B) {
		b.SetBytes(st.Size())
		for range b.N {
			if err := s.SaveImages(ctx, []string{"big:1"}, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func newBenchService(b *testing.B, d driverCase) *Service {
	testutil.RequiresRoot(b)
	root := b.TempDir()
	db, err := bolt.Open(filepath.Join(root, "berth.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cs, err := content.New(filepath.Join(root, "content"))
	if err != nil {
		b.Fatal(err)
	}
	sn, err := d.new(context.Background(), filepath.Join(root, "snapshots"), db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sn.Close() })
	s, err := New(Options{DB: db, Content: cs, Snapshotter: sn, Driver: d.name})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

package vfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkCopyTree(b *testing.B) {
	src := b.TempDir()
	for i := range 1000 {
		dir := filepath.Join(src, fmt.Sprintf("d%02d", i%50))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), make([]byte, 4096), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	dst := b.TempDir()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := copyTree(context.Background(), src, filepath.Join(dst, fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "µs/file")
}

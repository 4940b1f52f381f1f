package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	cowRounds   = 5
	cowImage    = "berth-bench/cow:latest"
	cowBigBytes = 1 << 30
	cowWorkload = "copy-on-write: run, first 1-byte write into a 1 GiB image file"
)

// cowDockerfile makes an image whose top layer holds one 1 GiB file.
var cowDockerfile = fmt.Sprintf("FROM %s\nRUN head -c %d /dev/zero > /big\n", busyboxImage, cowBigBytes)

// cowScript writes one byte in the middle of /big without truncating it.
const cowScript = "printf x | dd of=/big bs=1 seek=536870912 conv=notrunc 2>/dev/null"

// BenchmarkCopyOnWrite times, on berth and each peer engine with its
// default storage driver, `run --rm` of a container whose process writes
// one byte into a 1 GiB file of its image: on overlay2 (and podman's
// overlay) the first write copies the whole file up into the container's
// layer, so the run costs about a container start plus a 1 GiB copy,
// which is the floor shown: that copy on this disk, fsynced as overlayfs
// does after a copy-up. bench's storage rows show the same write on
// berth's btrfs driver, which copies only the touched extent.
func BenchmarkCopyOnWrite(b *testing.B) {
	es := startEngines(b)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(cowDockerfile), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, e := range es.all {
		if e.name == "docker" {
			e.env = append(e.env, "DOCKER_BUILDKIT=0") // the classic builder: the CLI has no buildx
		}
		e.must(b, "build", "-q", "-t", cowImage, dir)
		b.Cleanup(func() { e.run(nil, "rmi", cowImage) })
	}
	src := filepath.Join(dir, "big")
	writeZeros(b, src, cowBigBytes)
	dst := filepath.Join(dir, "copy")
	step := func(i int) float64 {
		if i == len(es.all) {
			return copyFsync(b, src, dst)
		}
		return es.all[i].timed(b, "run", "--rm", cowImage, "sh", "-c", cowScript)
	}
	for range b.N {
		runs := alternate(cowRounds, len(es.all)+1, step)
		note := "image built from the busybox fixture with RUN head -c 1GiB /dev/zero > /big; each run a new container, removed by --rm"
		recordAll(b, es, cowWorkload, note, runs, floorRuns{"copy of 1 GiB on disk, fsynced", runs[len(es.all)]})
	}
}

// writeZeros writes a file of n zero bytes (real blocks, not a hole).
func writeZeros(b *testing.B, path string, n int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 1<<20)
	for done := int64(0); done < n; done += int64(len(block)) {
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}

// copyFsync copies src to dst as a copy-up does (the kernel's own copy,
// then fsync) and returns the time taken; dst is removed after.
func copyFsync(b *testing.B, src, dst string) float64 {
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
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds()
}

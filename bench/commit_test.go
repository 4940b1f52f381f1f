package bench

import (
	"archive/tar"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	commitRounds   = 5
	commitFiles    = 1000
	commitFileSize = 100 << 10
	commitWorkload = "commit: 100 MB in 1,000 files"
)

// commitScript fills /data of a busybox container with commitFiles random
// files of commitFileSize bytes.
var commitScript = fmt.Sprintf(`mkdir /data && i=0 && while [ $i -lt %d ]; do head -c %d /dev/urandom > /data/f$i; i=$((i+1)); done`,
	commitFiles, commitFileSize)

// BenchmarkCommit times `commit` of an exited container whose writable
// layer holds 100 MB in 1,000 new files (the image removed again, untimed,
// after each run), beside the floor: writing the same files as one tar to
// the same disk, fsynced, which is what committing them as a layer needs
// at least.
func BenchmarkCommit(b *testing.B) {
	es := startEngines(b)
	for _, e := range es.all {
		e.must(b, "run", "--name", "bbc-src", busyboxImage, "sh", "-c", commitScript)
		b.Cleanup(func() { e.run(nil, "rm", "-f", "bbc-src") })
	}
	src := b.TempDir()
	writeCommitFiles(b, src)
	sink := filepath.Join(b.TempDir(), "layer.tar")
	n := 0
	step := func(i int) float64 {
		if i == len(es.all) {
			return tarDir(b, src, sink)
		}
		e := es.all[i]
		n++
		tag := fmt.Sprintf("berth-bench/commit:%d", n)
		t := e.timed(b, "commit", "bbc-src", tag)
		e.must(b, "rmi", tag)
		return t
	}
	for range b.N {
		runs := alternate(commitRounds, len(es.all)+1, step)
		note := "the container wrote 1,000 files of 100 KiB from /dev/urandom; commit of the exited container, the new image removed after each run (untimed)"
		recordAll(b, es, commitWorkload, note, runs, floorRuns{"tar of the files to disk, fsynced", runs[len(es.all)]})
	}
}

// writeCommitFiles writes the same shape of data on the host.
func writeCommitFiles(b *testing.B, dir string) {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{'c'})
	buf := make([]byte, commitFileSize)
	for i := range commitFiles {
		rng.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// tarDir writes the files of dir as a tar to dst, fsyncs it and returns
// the time taken; dst is removed after.
func tarDir(b *testing.B, dir, dst string) float64 {
	b.Helper()
	start := time.Now()
	f, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(dst)
	tw := tar.NewWriter(f)
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, ent := range ents {
		if err := addFile(tw, filepath.Join(dir, ent.Name()), "data/"+ent.Name()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start).Seconds()
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr, err := tar.FileInfoHeader(st, "")
	if err != nil {
		return err
	}
	hdr.Name = name
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

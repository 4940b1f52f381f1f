package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"berth/archive"
	"berth/content"
	"berth/mount"
	"berth/snapshot"
	"berth/snapshot/btrfs"
	"berth/snapshot/btrfs/btrfstest"
	"berth/snapshot/overlay"
	"berth/snapshot/vfs"
)

// The storage benchmark: for each driver, on a loop-mounted filesystem of
// the same size (ext4 for overlay2 and vfs, btrfs for btrfs):
//
//	create-*       Prepare + mount of a container on the 500 MB image
//	               (2000 files) and on the 1 GiB one (one file)
//	write-1B       1 byte written (and fsynced) into a 1 GiB file of an
//	write-1MiB     image layer, through a fresh container's mount: time,
//	               new disk used (statfs) and the snapshotter's Usage
//	commit-*       archive.Diff of that change, to io.Discard and into the
//	               content store (fsynced, digested)
//
// With -benchtime Nx each step runs N times and the table shows the median
// and the range. BERTH_BENCH_COLD=1 drops the page cache before each timed step, so that
// reads come from disk as they would long after a pull.
const (
	fsSize     = 5 << 30
	imageBytes = 500 << 20
	imageFiles = 2000
	bigSize    = 1 << 30
	writeAt    = bigSize / 2
)

type driver struct {
	name   string
	fstype string
	open   func(ctx context.Context, root string, db *bbolt.DB) (snapshot.Snapshotter, error)
}

func drivers() []driver {
	return []driver{
		{"overlay2", "ext4", func(ctx context.Context, root string, db *bbolt.DB) (snapshot.Snapshotter, error) {
			return overlay.New(ctx, root, db)
		}},
		{"vfs", "ext4", func(ctx context.Context, root string, db *bbolt.DB) (snapshot.Snapshotter, error) {
			return vfs.New(ctx, root, db)
		}},
		{"btrfs", "btrfs", func(ctx context.Context, root string, db *bbolt.DB) (snapshot.Snapshotter, error) {
			return btrfs.New(ctx, root, db)
		}},
	}
}

// result is one cell of the summary table: every timing taken, and the
// sizes of the last run.
type result struct {
	times       []time.Duration
	disk, usage int64
}

func BenchmarkStorage(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the storage benchmark mounts filesystems and needs root")
	}
	steps := []string{"create-500MB", "create-1GiB", "write-1B", "write-1MiB", "commit-1B-discard", "commit-1B-store", "commit-1MiB-discard", "commit-1MiB-store"}
	table := map[string]map[string]*result{}
	for _, d := range drivers() {
		table[d.name] = map[string]*result{}
		for _, s := range steps {
			table[d.name][s] = &result{}
		}
		b.Run(d.name, func(b *testing.B) { benchDriver(b, d, table[d.name]) })
	}
	// Printed rather than logged: a parent benchmark's log is not shown.
	fmt.Printf("\n%s\n\n", summary(drivers(), steps, table))
	recordStorage(b, drivers(), steps, table)
}

// env is one driver on its own loop-mounted filesystem.
type env struct {
	sn    snapshot.Snapshotter
	mnt   string
	store *content.Store
	work  string // mount points and scratch, on the host's disk
	mode  archive.WhiteoutMode
}

func newEnv(b *testing.B, d driver) *env {
	b.Helper()
	mnt := btrfstest.MountFS(b, d.fstype, fsSize, btrfstest.Preallocated())
	db, err := bbolt.Open(filepath.Join(mnt, "berth.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	sn, err := d.open(ctx, filepath.Join(mnt, "snapshots", d.name), db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sn.Close() })
	store, err := content.New(filepath.Join(mnt, "content"))
	if err != nil {
		b.Fatal(err)
	}
	mode := archive.WhiteoutDelete
	if d.name == "overlay2" {
		mode = archive.WhiteoutOverlay
	}
	return &env{sn: sn, mnt: mnt, store: store, work: b.TempDir(), mode: mode}
}

func benchDriver(b *testing.B, d driver, res map[string]*result) {
	e := newEnv(b, d)
	e.layer(b, "image-500MB", fillImage)
	e.layer(b, "image-1GiB", fillBig)
	for _, image := range []string{"500MB", "1GiB"} {
		step := "create-" + image
		b.Run(step, func(b *testing.B) { e.benchCreate(b, "image-"+image, res[step]) })
	}
	for _, w := range []struct {
		name string
		n    int
	}{{"1B", 1}, {"1MiB", 1 << 20}} {
		b.Run("write-"+w.name, func(b *testing.B) { e.benchWrite(b, w.n, res["write-"+w.name]) })
		for _, sink := range []string{"discard", "store"} {
			name := "commit-" + w.name + "-" + sink
			b.Run(name, func(b *testing.B) { e.benchCommit(b, w.n, sink, res[name]) })
		}
	}
}

// layer commits name, a base layer, after fill has written its files.
func (e *env) layer(b *testing.B, name string, fill func(b *testing.B, root string)) {
	b.Helper()
	ctx := context.Background()
	root := e.prepare(b, name+"-extract", "")
	fill(b, root)
	e.unmount(b, root)
	if err := e.sn.Commit(ctx, name, name+"-extract"); err != nil {
		b.Fatal(err)
	}
}

// prepare makes an Active snapshot on parent and mounts it.
func (e *env) prepare(b *testing.B, key, parent string) string {
	b.Helper()
	mounts, err := e.sn.Prepare(context.Background(), key, parent)
	if err != nil {
		b.Fatal(err)
	}
	return e.mount(b, mounts)
}

func (e *env) mount(b *testing.B, mounts []mount.Mount) string {
	b.Helper()
	target, err := os.MkdirTemp(e.work, "rootfs-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mount.UnmountAll(target) })
	if err := mount.All(mounts, target); err != nil {
		b.Fatal(err)
	}
	return target
}

func (e *env) unmount(b *testing.B, target string) {
	b.Helper()
	if err := mount.UnmountAll(target); err != nil {
		b.Fatal(err)
	}
}

func (e *env) remove(b *testing.B, key string) {
	b.Helper()
	if err := e.sn.Remove(context.Background(), key); err != nil {
		b.Fatal(err)
	}
}

// fillImage writes imageBytes in imageFiles files over 20 directories.
func fillImage(b *testing.B, root string) {
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, imageBytes/imageFiles)
	for i := range imageFiles {
		dir := filepath.Join(root, "usr", fmt.Sprintf("d%02d", i%20))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		_, _ = rng.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// fillBig writes one 1 GiB file of incompressible, non-repeating data.
func fillBig(b *testing.B, root string) {
	f, err := os.Create(filepath.Join(root, "big"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{2})
	block := make([]byte, 1<<20)
	_, _ = rng.Read(block)
	for i := range bigSize / len(block) {
		binary.LittleEndian.PutUint64(block, uint64(i))
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}

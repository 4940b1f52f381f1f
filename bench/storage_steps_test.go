package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"berth/archive"
	"berth/errdefs"
	"berth/mount"
)

// settle makes the filesystem's accounting current and, when asked,
// empties the page cache, so that the next step starts from disk.
func (e *env) settle(b *testing.B) {
	b.Helper()
	fd, err := unix.Open(e.mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		b.Fatal(err)
	}
	if os.Getenv("BERTH_BENCH_COLD") == "1" {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200); err != nil {
			b.Fatal(err)
		}
	}
}

// used is the space the filesystem reports in use.
func (e *env) used(b *testing.B) int64 {
	b.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(e.mnt, &st); err != nil {
		b.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// benchCreate times what a container's creation costs the driver: Prepare
// on image and mounting the result.
func (e *env) benchCreate(b *testing.B, image string, res *result) {
	ctx := context.Background()
	for i := range b.N {
		key := fmt.Sprintf("create-%s-%d", image, i)
		b.StopTimer()
		e.settle(b)
		before := e.used(b)
		b.StartTimer()
		start := time.Now()
		mounts, err := e.sn.Prepare(ctx, key, image)
		if err != nil {
			b.Fatal(err)
		}
		root := e.mount(b, mounts)
		res.times = append(res.times, time.Since(start))
		b.StopTimer()
		e.settle(b)
		res.disk = e.used(b) - before
		e.unmount(b, root)
		e.remove(b, key)
		b.StartTimer()
	}
	b.ReportMetric(float64(res.disk), "disk-B")
}

// change opens big without truncating it, writes n bytes in the middle and
// fsyncs: the whole cost of the first write into an inherited file.
func change(root string, n int) error {
	f, err := os.OpenFile(filepath.Join(root, "big"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(make([]byte, n), writeAt); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (e *env) benchWrite(b *testing.B, n int, res *result) {
	ctx := context.Background()
	for i := range b.N {
		b.StopTimer()
		key := fmt.Sprintf("write-%d-%d", n, i)
		root := e.prepare(b, key, "image-1GiB")
		e.settle(b)
		before := e.used(b)
		b.StartTimer()
		start := time.Now()
		if err := change(root, n); err != nil {
			b.Fatal(err)
		}
		res.times = append(res.times, time.Since(start))
		b.StopTimer()
		e.settle(b)
		res.disk = e.used(b) - before
		u, err := e.sn.Usage(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		res.usage = u.Size
		e.unmount(b, root)
		e.remove(b, key)
		b.StartTimer()
	}
	b.ReportMetric(float64(res.disk), "disk-B")
	b.ReportMetric(float64(res.usage), "usage-B")
}

// benchCommit times the layer diff of an n-byte change: what `commit`
// costs before any compression. sink "store" writes it into the content
// store (digest, fsync, rename), "discard" only produces it.
func (e *env) benchCommit(b *testing.B, n int, sink string, res *result) {
	ctx := context.Background()
	for i := range b.N {
		b.StopTimer()
		key := fmt.Sprintf("commit-%d-%s-%d", n, sink, i)
		root := e.prepare(b, key, "image-1GiB")
		if err := change(root, n); err != nil {
			b.Fatal(err)
		}
		mounts, err := e.sn.Mounts(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		e.unmount(b, root)
		lower, upper := e.diffDirs(b, key, mounts)
		e.settle(b)
		b.StartTimer()
		start := time.Now()
		size, blob := e.diff(b, lower, upper, key, sink)
		res.times = append(res.times, time.Since(start))
		b.StopTimer()
		res.disk = size
		if blob != "" {
			if err := e.store.Delete(ctx, blob); err != nil {
				b.Fatal(err)
			}
		}
		e.remove(b, key)
		if lower != "" {
			e.remove(b, key+"-lower")
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(res.disk), "tar-B")
}

// diffDirs returns the trees archive.Diff compares: an overlay upperdir
// alone, or the container's tree and a View of its parent.
func (e *env) diffDirs(b *testing.B, key string, mounts []mount.Mount) (lower, upper string) {
	b.Helper()
	upper, ok := mount.WritableDir(mounts)
	if !ok {
		b.Fatalf("%s: no writable dir in %+v", key, mounts)
	}
	if e.mode == archive.WhiteoutOverlay {
		return "", upper
	}
	vm, err := e.sn.View(context.Background(), key+"-lower", "image-1GiB")
	if err != nil {
		b.Fatal(err)
	}
	lower, _, ok = mount.BindOf(vm)
	if !ok {
		b.Fatalf("View mounts %+v are not a bind", vm)
	}
	return lower, upper
}

// diff writes the layer and returns its size and, when it went into the
// content store, its digest.
func (e *env) diff(b *testing.B, lower, upper, key, sink string) (int64, digest.Digest) {
	b.Helper()
	ctx := context.Background()
	if sink == "discard" {
		cw := &countWriter{w: io.Discard}
		if err := archive.Diff(ctx, cw, lower, upper, e.mode); err != nil {
			b.Fatal(err)
		}
		return cw.n, ""
	}
	w, err := e.store.Writer(ctx, key)
	if err != nil {
		b.Fatal(err)
	}
	if err := archive.Diff(ctx, w, lower, upper, e.mode); err != nil {
		b.Fatal(err)
	}
	size, dgst := w.Offset(), w.Digest()
	if err := w.Commit(ctx, size, ""); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		b.Fatal(err)
	}
	return size, dgst
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

// summary renders the results as the markdown table of
// docs/storage-drivers.md, drivers as columns.
func summary(drivers []driver, steps []string, table map[string]map[string]*result) string {
	var sb strings.Builder
	sb.WriteString("| step |")
	for _, d := range drivers {
		fmt.Fprintf(&sb, " %s |", d.name)
	}
	sb.WriteString("\n|---|")
	sb.WriteString(strings.Repeat("---|", len(drivers)))
	for _, s := range steps {
		fmt.Fprintf(&sb, "\n| %s |", s)
		for _, d := range drivers {
			r := table[d.name][s]
			switch {
			case len(r.times) == 0:
				sb.WriteString(" - |")
			case strings.HasPrefix(s, "write-"):
				fmt.Fprintf(&sb, " %s, disk +%s, Usage %s |", r.timing(), fmtBytes(r.disk), fmtBytes(r.usage))
			case strings.HasPrefix(s, "commit-"):
				fmt.Fprintf(&sb, " %s (tar %s) |", r.timing(), fmtBytes(r.disk))
			default:
				fmt.Fprintf(&sb, " %s, disk +%s |", r.timing(), fmtBytes(r.disk))
			}
		}
	}
	return sb.String()
}

// timing is the median of the samples, with their range when there are
// several (go test -benchtime Nx).
func (r *result) timing() string {
	ts := slices.Clone(r.times)
	slices.Sort(ts)
	med := fmtDur(ts[len(ts)/2])
	if len(ts) == 1 {
		return med
	}
	return fmt.Sprintf("%s (%s–%s)", med, fmtDur(ts[0]), fmtDur(ts[len(ts)-1]))
}

func fmtDur(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func fmtBytes(n int64) string {
	abs := n
	if abs < 0 {
		abs = -abs
	}
	switch {
	case abs >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case abs >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case abs >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

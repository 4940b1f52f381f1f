package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// buildTree writes a tree with every kind of entry directly through the
// kernel (not through Apply), with nanosecond mtimes. order reverses the
// creation order so two calls give different directory layouts on disk.
func buildTree(t testing.TB, root string, reverse bool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	steps := []func(){
		func() { must(os.MkdirAll(filepath.Join(root, "etc"), 0o755)) },
		func() {
			must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
			p := filepath.Join(root, "bin/busybox")
			must(os.WriteFile(p, bytes.Repeat([]byte("busybox"), 50000), 0o755))
			must(os.Chmod(p, 0o4755))
			must(unix.Lsetxattr(p, "security.capability", []byte(capNetRaw()), 0))
			must(os.Link(p, filepath.Join(root, "bin/zz-link")))
			must(os.Link(p, filepath.Join(root, "bin/aa-link")))
			must(os.Symlink("/bin/busybox", filepath.Join(root, "bin/sh")))
		},
		func() {
			must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
			must(os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0\n"), 0o644))
		},
		func() {
			must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
			must(os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\n"), 0o600))
		},
		func() {
			must(os.MkdirAll(filepath.Join(root, "usr/share/doc/pkg"), 0o755))
			must(os.WriteFile(filepath.Join(root, "usr/share/doc/pkg/README"), []byte("readme"), 0o644))
		},
		func() {
			must(os.MkdirAll(filepath.Join(root, "home/u"), 0o700))
			must(os.Chown(filepath.Join(root, "home/u"), 1000, 1000))
			must(os.WriteFile(filepath.Join(root, "home/u/empty"), nil, 0o640))
			must(os.Lchown(filepath.Join(root, "home/u/empty"), 1000, 1000))
			must(unix.Lsetxattr(filepath.Join(root, "home/u"), "user.note", []byte("hi"), 0))
		},
		func() {
			must(os.MkdirAll(filepath.Join(root, "dev"), 0o755))
			must(unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
			must(unix.Mkfifo(filepath.Join(root, "dev/fifo"), 0o600))
			must(os.Chmod(filepath.Join(root, "dev/null"), 0o666))
		},
		func() {
			must(os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
			must(os.Chmod(filepath.Join(root, "tmp"), 0o1777))
		},
	}
	if reverse {
		slices.Reverse(steps)
	}
	for _, s := range steps {
		s()
	}
	stampTimes(t, root)
}

// stampTimes gives every entry a fixed nanosecond mtime, children first.
func stampTimes(t testing.TB, root string) {
	t.Helper()
	var paths []string
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}))
	ts := unix.NsecToTimespec(epoch.Add(123456789 * time.Nanosecond).UnixNano())
	for i := len(paths) - 1; i >= 0; i-- {
		must(unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func TestTarRoundTrip(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	src := t.TempDir()
	buildTree(t, src, false)
	want := tarOf(t, src)
	for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			dst := t.TempDir()
			apply(t, dst, want, mode)
			sameTars(t, "tar of applied tree", tarOf(t, dst), want)
		})
	}
	entries := listing(t, want)
	if i, j := slices.Index(entries, "0 bin/aa-link"), slices.Index(entries, "1 bin/busybox -> bin/aa-link"); i < 0 || j < 0 {
		t.Errorf("first hardlink in sort order is not the file: %q", entries)
	}
}

func TestDeterminism(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	buildTree(t, a, false)
	buildTree(t, b, true)
	sameTars(t, "Tar of identical trees", tarOf(t, b), tarOf(t, a))
	sameTars(t, "Diff of identical trees", diffOf(t, "", b, WhiteoutDelete), diffOf(t, "", a, WhiteoutDelete))
	sameTars(t, "overlay Diff of identical trees", diffOf(t, "", b, WhiteoutOverlay), diffOf(t, "", a, WhiteoutOverlay))
	if got := diffOf(t, a, b, WhiteoutDelete); len(listing(t, got)) != 0 {
		t.Errorf("Diff of identical trees has entries: %q", listing(t, got))
	}
}

// mutation is one change made to a copy of the base tree, with what
// `docker diff` reports for it.
type mutation struct {
	do      func(t *testing.T, root string)
	changes []Change
}

func deleteModeMutations() []mutation {
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	return []mutation{
		{do: func(t *testing.T, r string) {
			// Same size, same whole-second mtime: only content tells.
			p := filepath.Join(r, "etc/passwd")
			must(t, os.WriteFile(p, []byte("ROOT:x:0:0\n"), 0o644))
			must(t, os.Chtimes(p, epoch, epoch))
		}, changes: []Change{{"/etc", ChangeModify}, {"/etc/passwd", ChangeModify}}},
		{do: func(t *testing.T, r string) { must(t, os.Remove(filepath.Join(r, "etc/group"))) },
			changes: []Change{{"/etc", ChangeModify}, {"/etc/group", ChangeDelete}}},
		{do: func(t *testing.T, r string) { must(t, os.RemoveAll(filepath.Join(r, "usr/share/doc"))) },
			changes: []Change{{"/usr", ChangeModify}, {"/usr/share", ChangeModify}, {"/usr/share/doc", ChangeDelete}}},
		{do: func(t *testing.T, r string) { must(t, os.Chmod(filepath.Join(r, "tmp"), 0o755)) },
			changes: []Change{{"/tmp", ChangeModify}}},
		{do: func(t *testing.T, r string) {
			must(t, os.Remove(filepath.Join(r, "bin/sh")))
			must(t, os.Symlink("busybox", filepath.Join(r, "bin/sh")))
			must(t, unix.Lsetxattr(filepath.Join(r, "bin/zz-link"), "user.x", []byte("1"), 0))
		}, changes: []Change{{"/bin", ChangeModify}, {"/bin/aa-link", ChangeModify}, {"/bin/busybox", ChangeModify},
			{"/bin/sh", ChangeModify}, {"/bin/zz-link", ChangeModify}}},
		{do: func(t *testing.T, r string) {
			must(t, os.RemoveAll(filepath.Join(r, "home/u")))
			must(t, os.WriteFile(filepath.Join(r, "home/u"), []byte("now a file"), 0o644))
			must(t, os.Remove(filepath.Join(r, "dev/fifo")))
			must(t, os.MkdirAll(filepath.Join(r, "dev/fifo/sub"), 0o755))
		}, changes: []Change{{"/dev", ChangeModify}, {"/dev/fifo", ChangeModify}, {"/dev/fifo/sub", ChangeAdd},
			{"/home", ChangeModify}, {"/home/u", ChangeModify}}},
		{do: func(t *testing.T, r string) {
			must(t, os.MkdirAll(filepath.Join(r, "new/deep"), 0o750))
			must(t, os.WriteFile(filepath.Join(r, "new/deep/f"), []byte("f"), 0o644))
			must(t, os.Link(filepath.Join(r, "new/deep/f"), filepath.Join(r, "new/g")))
		}, changes: []Change{{"/new", ChangeAdd}, {"/new/deep", ChangeAdd}, {"/new/deep/f", ChangeAdd}, {"/new/g", ChangeAdd}}},
	}
}

func TestDiffDeleteMode(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	src := t.TempDir()
	buildTree(t, src, false)
	base := tarOf(t, src)
	for i, m := range deleteModeMutations() {
		t.Run(strings.TrimPrefix(m.changes[len(m.changes)-1].Path, "/"), func(t *testing.T) {
			t.Parallel()
			lower, upper, replay := t.TempDir(), t.TempDir(), t.TempDir()
			for _, d := range []string{lower, upper, replay} {
				apply(t, d, base, WhiteoutDelete)
			}
			m.do(t, upper)
			changes, err := Changes(context.Background(), lower, upper, WhiteoutDelete)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(changes, m.changes) {
				t.Errorf("mutation %d: Changes = %v, want %v", i, changes, m.changes)
			}
			d := diffOf(t, lower, upper, WhiteoutDelete)
			sameTars(t, "second Diff", diffOf(t, lower, upper, WhiteoutDelete), d)
			apply(t, replay, d, WhiteoutDelete)
			sameTars(t, "lower + Diff vs upper", tarOf(t, replay), tarOf(t, upper))
		})
	}
}

func TestDiffWhiteoutOrder(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	lower, upper := t.TempDir(), t.TempDir()
	base := layer(t, ent{name: "d/", typ: tar.TypeDir}, ent{name: "d/a"}, ent{name: "d/b"}, ent{name: "d/c"}, ent{name: "d/z"})
	apply(t, lower, base, WhiteoutDelete)
	apply(t, upper, base, WhiteoutDelete)
	for _, n := range []string{"d/c", "d/a"} {
		if err := os.Remove(filepath.Join(upper, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(upper, "d/b"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := listing(t, diffOf(t, lower, upper, WhiteoutDelete))
	want := []string{"5 d/", "0 d/.wh.a", "0 d/.wh.c", "0 d/b"}
	if !slices.Equal(got, want) {
		t.Errorf("Diff entries %q, want %q", got, want)
	}
}

func TestDiffCancelled(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	upper := t.TempDir()
	apply(t, upper, layer(t, ent{name: "d/f", body: "f"}), WhiteoutDelete)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
		if err := Diff(ctx, io.Discard, "", upper, mode); !errors.Is(err, context.Canceled) {
			t.Errorf("%s Diff with cancelled context = %v, want context.Canceled", mode, err)
		}
	}
	if err := Tar(ctx, io.Discard, upper); !errors.Is(err, context.Canceled) {
		t.Errorf("Tar with cancelled context = %v", err)
	}
}

package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth/errdefs"
	"berth/testutil"

	volumetypes "github.com/moby/moby/api/types/volume"

	"golang.org/x/sys/unix"
)

func TestCopyUp(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(src, os.ModeSticky|0o770))
	must(os.Chown(src, 1000, 1001))
	must(os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o750))
	must(os.Chown(filepath.Join(src, "sub"), 33, 33))
	must(os.WriteFile(filepath.Join(src, "sub", "file"), []byte("payload"), 0o640))
	must(os.Chown(filepath.Join(src, "sub", "file"), 1000, 1000))
	must(os.Chmod(filepath.Join(src, "sub", "file"), os.ModeSetuid|0o750))
	must(os.Link(filepath.Join(src, "sub", "file"), filepath.Join(src, "hardlink")))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(unix.Lsetxattr(filepath.Join(src, "sub", "deep"), "user.note", []byte("kept"), 0))
	must(os.Chtimes(filepath.Join(src, "sub", "deep"), mtime, mtime))

	copied, err := CopyUp(context.Background(), src, dst)
	if err != nil || !copied {
		t.Fatalf("CopyUp = %v, %v", copied, err)
	}
	checks := []struct {
		rel      string
		mode     os.FileMode
		uid, gid uint32
	}{
		{".", 0o770 | os.ModeDir | os.ModeSticky, 1000, 1001},
		{"sub", 0o750 | os.ModeDir, 33, 33},
		{"sub/file", 0o750 | os.ModeSetuid, 1000, 1000},
		{"hardlink", 0o750 | os.ModeSetuid, 1000, 1000},
		{"abs-link", 0o777 | os.ModeSymlink, 0, 0},
		{"fifo", 0o600 | os.ModeNamedPipe, 0, 0},
	}
	for _, c := range checks {
		fi, err := os.Lstat(filepath.Join(dst, c.rel))
		if err != nil {
			t.Errorf("%s: %v", c.rel, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: mode %v uid %d gid %d; want %v %d %d", c.rel, fi.Mode(), st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub", "file")); string(b) != "payload" {
		t.Errorf("content: %q", b)
	}
	a, _ := os.Stat(filepath.Join(dst, "sub", "file"))
	b, _ := os.Stat(filepath.Join(dst, "hardlink"))
	if !os.SameFile(a, b) {
		t.Error("hard link became two files")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "abs-link")); l != "/etc/passwd" {
		t.Errorf("symlink target %q", l)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(dst, "sub", "deep"), "user.note", buf); err != nil || string(buf[:n]) != "kept" {
		t.Errorf("xattr: %q, %v", buf[:n], err)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "sub", "deep")); !fi.ModTime().Equal(mtime) {
		t.Errorf("directory mtime %v, want %v", fi.ModTime(), mtime)
	}

	// A volume with content is never overwritten; a missing or non-directory
	// source copies nothing.
	must(os.WriteFile(filepath.Join(src, "later"), nil, 0o644))
	for _, s := range []string{src, filepath.Join(src, "missing"), filepath.Join(src, "sub", "file")} {
		target := dst
		if s != src {
			target = t.TempDir()
		}
		if copied, err := CopyUp(context.Background(), s, target); copied || err != nil {
			t.Errorf("CopyUp(%s) = %v, %v; want nothing copied", s, copied, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "later")); !os.IsNotExist(err) {
		t.Error("copy-up ran again into a volume with content")
	}
}

func TestCopyUpCancelled(t *testing.T) {
	t.Parallel()
	src, dst := t.TempDir(), t.TempDir()
	for i := range 600 {
		os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), nil, 0o644)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CopyUp(ctx, src, dst); err == nil {
		t.Fatal("a cancelled copy-up succeeded")
	}
}

func TestPopulateOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "img"), []byte("from image"), 0o644)
	for _, n := range []string{"fresh", "mine", "later"} {
		if _, err := f.svc.VolumeCreate(ctx, volumetypes.CreateRequest{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(name string) string {
		ents, _ := os.ReadDir(f.svc.Path(name))
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return strings.Join(out, ",")
	}
	// Filled once; emptied, it stays empty.
	if err := f.svc.Populate(ctx, "fresh", src); err != nil || list("fresh") != "img" {
		t.Fatalf("populate: %v, %q", err, list("fresh"))
	}
	os.Remove(filepath.Join(f.svc.Path("fresh"), "img"))
	f.svc = f.open(t) // the mark survives a restart
	if err := f.svc.Populate(ctx, "fresh", src); err != nil || list("fresh") != "" {
		t.Fatalf("populated twice: %v, %q", err, list("fresh"))
	}
	// A volume with content of its own is never filled.
	os.WriteFile(filepath.Join(f.svc.Path("mine"), "own"), nil, 0o644)
	if err := f.svc.Populate(ctx, "mine", src); err != nil || list("mine") != "own" {
		t.Fatalf("populate over content: %v, %q", err, list("mine"))
	}
	// Nothing in the image at the path: a later image may still fill it.
	if err := f.svc.Populate(ctx, "later", filepath.Join(src, "missing")); err != nil || list("later") != "" {
		t.Fatalf("populate from nothing: %v, %q", err, list("later"))
	}
	if err := f.svc.Populate(ctx, "later", src); err != nil || list("later") != "img" {
		t.Fatalf("populate after nothing: %v, %q", err, list("later"))
	}
	// A tmpfs volume's content ends with its mount: it is filled each time.
	if _, err := f.svc.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "tmp", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		os.RemoveAll(filepath.Join(f.svc.Path("tmp"), "img"))
		if err := f.svc.Populate(ctx, "tmp", src); err != nil || list("tmp") != "img" {
			t.Fatalf("populate a tmpfs volume: %v, %q", err, list("tmp"))
		}
	}
	if err := f.svc.Populate(ctx, "ghost", src); !errdefs.NotFound(err) {
		t.Fatalf("populate a missing volume: %v", err)
	}
}

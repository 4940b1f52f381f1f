package snapshottest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth/mount"
	"berth/snapshot"
)

func lstat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return st
}

func testDeleteLowerFile(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	layer(t, sn, "base", "", func(root string) {
		write(t, filepath.Join(root, "gone"), "x")
		write(t, filepath.Join(root, "dir", "gone"), "x")
		write(t, filepath.Join(root, "kept"), "x")
	})
	root, mounts := active(t, sn, "work", "base")
	for _, p := range []string{"gone", "dir/gone"} {
		if err := os.Remove(filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, filepath.Join(root, p))
	}
	mustRead(t, filepath.Join(root, "kept"), "x")
	if o, ok := mount.OverlayOf(mounts); ok && o.Upper != "" {
		for _, p := range []string{"gone", "dir/gone"} {
			st := lstat(t, filepath.Join(o.Upper, p))
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("upperdir %s: mode %o rdev %d, want a 0/0 character device whiteout", p, st.Mode, st.Rdev)
			}
		}
		mustNotExist(t, filepath.Join(o.Upper, "kept"))
	}
	unmount(t, root)
	if err := sn.Commit(ctx, "top", "work"); err != nil {
		t.Fatal(err)
	}
	top := view(t, sn, "v", "top")
	mustNotExist(t, filepath.Join(top, "gone"))
	mustNotExist(t, filepath.Join(top, "dir", "gone"))
	mustRead(t, filepath.Join(top, "kept"), "x")
}

func testReplaceLowerDir(t *testing.T, sn snapshot.Snapshotter) {
	layer(t, sn, "base", "", func(root string) {
		write(t, filepath.Join(root, "d", "old1"), "x")
		write(t, filepath.Join(root, "d", "sub", "old2"), "x")
	})
	root, mounts := active(t, sn, "work", "base")
	if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "d", "new"), "y")
	entries, err := os.ReadDir(filepath.Join(root, "d"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "new" {
		t.Fatalf("replaced dir lists %v, %v; want only new", entries, err)
	}
	if o, ok := mount.OverlayOf(mounts); ok && o.Upper != "" {
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(o.Upper, "d"), "trusted.overlay.opaque", buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Errorf("upperdir d: trusted.overlay.opaque = %q, %v; want \"y\"", buf[:n], err)
		}
	}
}

func testChown(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	layer(t, sn, "base", "", func(root string) {
		write(t, filepath.Join(root, "f"), "x")
		write(t, filepath.Join(root, "owned", "g"), "x")
		for _, p := range []string{"owned", "owned/g"} {
			if err := os.Lchown(filepath.Join(root, p), 1000, 1001); err != nil {
				t.Fatal(err)
			}
		}
	})
	root, _ := active(t, sn, "work", "base")
	for _, p := range []string{"owned", "owned/g"} {
		if st := lstat(t, filepath.Join(root, p)); st.Uid != 1000 || st.Gid != 1001 {
			t.Errorf("%s owned by %d:%d, want 1000:1001 from the lower layer", p, st.Uid, st.Gid)
		}
	}
	if err := os.Lchown(filepath.Join(root, "f"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	unmount(t, root)
	if err := sn.Commit(ctx, "top", "work"); err != nil {
		t.Fatal(err)
	}
	top := view(t, sn, "v", "top")
	if st := lstat(t, filepath.Join(top, "f")); st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("f owned by %d:%d after commit, want 1234:5678", st.Uid, st.Gid)
	}
	mustRead(t, filepath.Join(top, "f"), "x")
	base := view(t, sn, "vb", "base")
	if st := lstat(t, filepath.Join(base, "f")); st.Uid != 0 {
		t.Errorf("chown leaked into the parent layer: uid %d", st.Uid)
	}
}

func testHardlinks(t *testing.T, sn snapshot.Snapshotter) {
	layer(t, sn, "base", "", func(root string) {
		write(t, filepath.Join(root, "a"), "linked")
		if err := os.Link(filepath.Join(root, "a"), filepath.Join(root, "b")); err != nil {
			t.Fatal(err)
		}
	})
	root, _ := active(t, sn, "work", "base")
	a, b := lstat(t, filepath.Join(root, "a")), lstat(t, filepath.Join(root, "b"))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("a and b: inodes %d, %d, nlink %d; want one inode with 2 links", a.Ino, b.Ino, a.Nlink)
	}
	if err := os.Link(filepath.Join(root, "a"), filepath.Join(root, "c")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, filepath.Join(root, "c"), "linked")
	if st := lstat(t, filepath.Join(root, "c")); st.Ino != lstat(t, filepath.Join(root, "a")).Ino {
		t.Errorf("new hard link c is a different inode from a")
	}
}

func testSymlinks(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	links := map[string]string{"rel": "dir/target", "abs": "/nonexistent/elsewhere", "dirlink": "dir"}
	layer(t, sn, "base", "", func(root string) {
		write(t, filepath.Join(root, "dir", "target"), "t")
		for name, target := range links {
			if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
				t.Fatal(err)
			}
		}
	})
	root, _ := active(t, sn, "work", "base")
	for name, target := range links {
		got, err := os.Readlink(filepath.Join(root, name))
		if err != nil || got != target {
			t.Errorf("readlink %s = %q, %v; want %q", name, got, err, target)
		}
	}
	mustRead(t, filepath.Join(root, "rel"), "t")
	if err := os.Remove(filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("other", filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	unmount(t, root)
	if err := sn.Commit(ctx, "top", "work"); err != nil {
		t.Fatal(err)
	}
	top := view(t, sn, "v", "top")
	if got, err := os.Readlink(filepath.Join(top, "rel")); err != nil || got != "other" {
		t.Errorf("replaced symlink = %q, %v", got, err)
	}
}

func testXattrs(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	get := func(path, name string) string {
		t.Helper()
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(path, name, buf)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", path, name, err)
		}
		return string(buf[:n])
	}
	layer(t, sn, "base", "", func(root string) {
		write(t, filepath.Join(root, "d", "f"), "x")
		for _, p := range []string{"d", "d/f"} {
			if err := unix.Lsetxattr(filepath.Join(root, p), "user.origin", []byte("base"), 0); err != nil {
				t.Fatal(err)
			}
		}
	})
	root, _ := active(t, sn, "work", "base")
	for _, p := range []string{"d", "d/f"} {
		if v := get(filepath.Join(root, p), "user.origin"); v != "base" {
			t.Errorf("%s user.origin = %q, want base", p, v)
		}
	}
	if err := unix.Lsetxattr(filepath.Join(root, "d", "f"), "user.origin", []byte("top"), 0); err != nil {
		t.Fatal(err)
	}
	unmount(t, root)
	if err := sn.Commit(ctx, "top", "work"); err != nil {
		t.Fatal(err)
	}
	if v := get(filepath.Join(view(t, sn, "v", "top"), "d", "f"), "user.origin"); v != "top" {
		t.Errorf("after commit user.origin = %q, want top", v)
	}
	if v := get(filepath.Join(view(t, sn, "vb", "base"), "d", "f"), "user.origin"); v != "base" {
		t.Errorf("parent layer user.origin = %q, want base", v)
	}
}

func testSpecialFiles(t *testing.T, sn snapshot.Snapshotter) {
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	want := []struct {
		path string
		mode uint32 // type and permission bits
		rdev uint64
	}{
		{"setuid", unix.S_IFREG | 0o4755, 0},
		{"setgid", unix.S_IFREG | 0o2711, 0},
		{"tmp", unix.S_IFDIR | 0o1777, 0},
		{"fifo", unix.S_IFIFO | 0o600, 0},
		{"null", unix.S_IFCHR | 0o666, unix.Mkdev(1, 3)},
		{"loop", unix.S_IFBLK | 0o660, unix.Mkdev(7, 0)},
	}
	layer(t, sn, "base", "", func(root string) {
		for _, w := range want {
			p := filepath.Join(root, w.path)
			var err error
			switch w.mode & unix.S_IFMT {
			case unix.S_IFREG:
				err = os.WriteFile(p, []byte("x"), 0o600)
			case unix.S_IFDIR:
				err = os.Mkdir(p, 0o700)
			default:
				err = unix.Mknod(p, w.mode, int(w.rdev))
			}
			if err == nil {
				err = unix.Chmod(p, w.mode&0o7777)
			}
			if err == nil {
				err = os.Chtimes(p, mtime, mtime)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	root, _ := active(t, sn, "work", "base")
	for _, w := range want {
		st := lstat(t, filepath.Join(root, w.path))
		if st.Mode != w.mode || st.Rdev != w.rdev {
			t.Errorf("%s: mode %o rdev %d, want %o %d", w.path, st.Mode, st.Rdev, w.mode, w.rdev)
		}
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", w.path, got, mtime)
		}
	}
}

// testStack200 builds the deep image the mount package exists for: 200
// committed layers, then one Active snapshot that sees every layer's file.
func testStack200(t *testing.T, sn snapshot.Snapshotter) {
	const layers = 200
	parent := ""
	for i := range layers {
		name := fmt.Sprintf("layer-%03d", i)
		layer(t, sn, name, parent, func(root string) {
			write(t, filepath.Join(root, "files", name), name)
		})
		parent = name
	}
	root, mounts := active(t, sn, "container", parent)
	if o, ok := mount.OverlayOf(mounts); ok && len(o.Lower) != layers {
		t.Errorf("overlay has %d lower layers, want %d", len(o.Lower), layers)
	}
	entries, err := os.ReadDir(filepath.Join(root, "files"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != layers {
		t.Fatalf("container sees %d files, want %d", len(entries), layers)
	}
	for i := range layers {
		name := fmt.Sprintf("layer-%03d", i)
		mustRead(t, filepath.Join(root, "files", name), name)
	}
	write(t, filepath.Join(root, "files", "container"), "rw")
}

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// capNetRaw is a version 2 security.capability value granting CAP_NET_RAW
// (what Debian's ping carries); the kernel validates the layout.
func capNetRaw() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<13)
	return string(b)
}

// entryWant is what one path of TestApplyEntries must look like.
type entryWant struct {
	path     string
	ifmt     uint32
	perm     uint32
	uid, gid uint32
	link     string
	rdev     uint64
}

func entriesLayer(t *testing.T) ([]byte, []entryWant) {
	data := layer(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o750},
		ent{name: "etc/", typ: tar.TypeDir},
		ent{name: "etc/passwd", body: "root:x:0:0::/root:/bin/sh\n"},
		ent{name: "./bin/", typ: tar.TypeDir},
		ent{name: "bin/busybox", body: "bb", mode: 0o4755, xattrs: map[string]string{"security.capability": capNetRaw()}},
		ent{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
		ent{name: "bin/ls", typ: tar.TypeSymlink, link: "busybox"},
		ent{name: "bin/hl", typ: tar.TypeLink, link: "bin/busybox"},
		ent{name: "dev/", typ: tar.TypeDir},
		ent{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		ent{name: "dev/sda", typ: tar.TypeBlock, major: 8, minor: 0, mode: 0o660, gid: 6},
		ent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620},
		ent{name: "home/user/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		ent{name: "home/user/f", body: "x", uid: 1000, gid: 1000,
			xattrs: map[string]string{"user.k": "v", "trusted.overlay.opaque": "y"}},
		ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "sgid/", typ: tar.TypeDir, mode: 0o2755, gid: 50},
	)
	return data, []entryWant{
		{path: ".", ifmt: unix.S_IFDIR, perm: 0o750},
		{path: "etc", ifmt: unix.S_IFDIR, perm: 0o755},
		{path: "etc/passwd", ifmt: unix.S_IFREG, perm: 0o644},
		{path: "bin/busybox", ifmt: unix.S_IFREG, perm: 0o4755},
		{path: "bin/sh", ifmt: unix.S_IFLNK, link: "/bin/busybox"},
		{path: "bin/ls", ifmt: unix.S_IFLNK, link: "busybox"},
		{path: "bin/hl", ifmt: unix.S_IFREG, perm: 0o4755},
		{path: "dev/null", ifmt: unix.S_IFCHR, perm: 0o666, rdev: unix.Mkdev(1, 3)},
		{path: "dev/sda", ifmt: unix.S_IFBLK, perm: 0o660, gid: 6, rdev: unix.Mkdev(8, 0)},
		{path: "run", ifmt: unix.S_IFDIR, perm: 0o755},
		{path: "run/fifo", ifmt: unix.S_IFIFO, perm: 0o620},
		{path: "home/user", ifmt: unix.S_IFDIR, perm: 0o700, uid: 1000, gid: 1000},
		{path: "home/user/f", ifmt: unix.S_IFREG, perm: 0o644, uid: 1000, gid: 1000},
		{path: "tmp", ifmt: unix.S_IFDIR, perm: 0o1777},
		{path: "sgid", ifmt: unix.S_IFDIR, perm: 0o2755, gid: 50},
	}
}

func (w entryWant) check(t *testing.T, root string) {
	t.Helper()
	p := filepath.Join(root, w.path)
	st, ok := lstat(t, p)
	if !ok {
		t.Fatalf("%s missing", w.path)
	}
	if st.Mode&unix.S_IFMT != w.ifmt || (w.ifmt != unix.S_IFLNK && st.Mode&0o7777 != w.perm) {
		t.Errorf("%s: mode %o, want type %o perm %o", w.path, st.Mode, w.ifmt, w.perm)
	}
	if st.Uid != w.uid || st.Gid != w.gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", w.path, st.Uid, st.Gid, w.uid, w.gid)
	}
	if w.rdev != 0 && st.Rdev != w.rdev {
		t.Errorf("%s: rdev %x, want %x", w.path, st.Rdev, w.rdev)
	}
	// run was created implicitly, so only its mode is Docker's default.
	if w.path != "run" && st.Mtim.Sec != epoch.Unix() {
		t.Errorf("%s: mtime %d, want %d", w.path, st.Mtim.Sec, epoch.Unix())
	}
	if w.link != "" {
		buf := make([]byte, 256)
		n, _ := unix.Readlink(p, buf)
		if string(buf[:n]) != w.link {
			t.Errorf("%s: link %q, want %q", w.path, buf[:n], w.link)
		}
	}
}

func TestApplyEntries(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	data, wants := entriesLayer(t)
	for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			apply(t, root, data, mode)
			for _, w := range wants {
				w.check(t, root)
			}
			bb, _ := lstat(t, filepath.Join(root, "bin/busybox"))
			hl, _ := lstat(t, filepath.Join(root, "bin/hl"))
			if bb.Ino != hl.Ino || bb.Nlink != 2 {
				t.Errorf("hardlink: inodes %d/%d nlink %d", bb.Ino, hl.Ino, bb.Nlink)
			}
			if v, _ := lgetxattr(t, filepath.Join(root, "bin/busybox"), "security.capability"); v != capNetRaw() {
				t.Errorf("security.capability = %x, want %x", v, capNetRaw())
			}
			if v, _ := lgetxattr(t, filepath.Join(root, "home/user/f"), "user.k"); v != "v" {
				t.Errorf("user.k = %q", v)
			}
			if _, ok := lgetxattr(t, filepath.Join(root, "home/user/f"), overlayOpaque); ok {
				t.Error("trusted.overlay.opaque from the tar was applied")
			}
		})
	}
}

func TestApplyWhiteoutsDelete(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := func(n string) ent { return ent{name: n, typ: tar.TypeDir} }
	file := func(n string) ent { return ent{name: n, body: n} }
	tests := []struct {
		name          string
		lower, layer  []ent
		present, gone []string
		check         func(t *testing.T, root string)
	}{
		{name: "file whiteout", lower: []ent{file("a"), file("b")}, layer: []ent{file(".wh.a")},
			present: []string{"b"}, gone: []string{"a"}},
		{name: "dir whiteout", lower: []ent{dir("d/"), file("d/x"), file("d/y/z")}, layer: []ent{file(".wh.d")},
			gone: []string{"d"}},
		{name: "opaque before siblings",
			lower:   []ent{dir("d/"), file("d/x"), file("d/y")},
			layer:   []ent{dir("d/"), file("d/.wh..wh..opq"), file("d/new")},
			present: []string{"d/new"}, gone: []string{"d/x", "d/y"}},
		{name: "opaque after siblings",
			lower:   []ent{dir("d/"), file("d/x"), dir("d/sub/"), file("d/sub/old")},
			layer:   []ent{dir("d/"), file("d/new"), file("d/sub/n2"), file("d/.wh..wh..opq")},
			present: []string{"d/new", "d/sub/n2"}, gone: []string{"d/x", "d/sub/old"}},
		{name: "aufs metadata ignored", lower: []ent{file("a")},
			layer:   []ent{dir(".wh..wh.plnk/"), file(".wh..wh.plnk/1.2"), file(".wh..wh.aufs")},
			present: []string{"a"}, gone: []string{".wh..wh.plnk", ".wh..wh.aufs"}},
		{name: "whiteout spares own layer", layer: []ent{file("n"), file(".wh.n")}, present: []string{"n"}},
		{name: "whiteout of missing entry", layer: []ent{file(".wh.nothing"), file("x/.wh.y")}, gone: []string{"x", "nothing"}},
		{name: "file over dir", lower: []ent{dir("d/"), file("d/x")}, layer: []ent{file("d")},
			gone: []string{"d/x"}, check: func(t *testing.T, root string) {
				if st, _ := lstat(t, filepath.Join(root, "d")); st.Mode&unix.S_IFMT != unix.S_IFREG {
					t.Errorf("d is %o, want a file", st.Mode)
				}
			}},
		{name: "dir over file", lower: []ent{file("f")}, layer: []ent{dir("f/"), file("f/x")},
			present: []string{"f/x"}},
		{name: "dir over dir keeps children", lower: []ent{dir("d/"), file("d/x")},
			layer:   []ent{{name: "d/", typ: tar.TypeDir, mode: 0o700, uid: 5}},
			present: []string{"d/x"}, check: func(t *testing.T, root string) {
				if st, _ := lstat(t, filepath.Join(root, "d")); st.Mode&0o7777 != 0o700 || st.Uid != 5 {
					t.Errorf("d: mode %o uid %d, want 0700 uid 5", st.Mode, st.Uid)
				}
			}},
		{name: "file over symlink", lower: []ent{file("t"), {name: "l", typ: tar.TypeSymlink, link: "t"}},
			layer: []ent{{name: "l", body: "new"}}, check: func(t *testing.T, root string) {
				if st, _ := lstat(t, filepath.Join(root, "l")); st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 3 {
					t.Errorf("l: mode %o size %d, want a 3-byte file", st.Mode, st.Size)
				}
				if st, _ := lstat(t, filepath.Join(root, "t")); st.Size != 1 {
					t.Errorf("symlink target t was written through: size %d", st.Size)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			apply(t, root, layer(t, tt.lower...), WhiteoutDelete)
			apply(t, root, layer(t, tt.layer...), WhiteoutDelete)
			for _, p := range tt.present {
				if _, ok := lstat(t, filepath.Join(root, p)); !ok {
					t.Errorf("%s missing", p)
				}
			}
			for _, p := range tt.gone {
				if _, ok := lstat(t, filepath.Join(root, p)); ok {
					t.Errorf("%s still present", p)
				}
			}
			if tt.check != nil {
				tt.check(t, root)
			}
			assertNoMarkers(t, root)
		})
	}
}

func assertNoMarkers(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), whiteoutPrefix) {
			t.Errorf("whiteout marker %s left in tree", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestApplyWhiteoutsOverlay(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root := t.TempDir()
	apply(t, root, layer(t,
		ent{name: ".wh.a", uid: 7, gid: 8},
		ent{name: "d/", typ: tar.TypeDir},
		ent{name: "d/.wh..wh..opq"},
		ent{name: "d/n", body: "n"},
		ent{name: "e/.wh..wh..opq"},
		ent{name: ".wh..wh.plnk/", typ: tar.TypeDir},
		ent{name: "x", body: "x"},
		ent{name: ".wh.x"},
	), WhiteoutOverlay)
	st, ok := lstat(t, filepath.Join(root, "a"))
	if !ok || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 || st.Uid != 7 || st.Gid != 8 {
		t.Errorf("a: mode %o rdev %d owner %d:%d, want a 0/0 char device owned 7:8", st.Mode, st.Rdev, st.Uid, st.Gid)
	}
	for _, d := range []string{"d", "e"} {
		if v, _ := lgetxattr(t, filepath.Join(root, d), overlayOpaque); v != "y" {
			t.Errorf("%s: %s = %q, want y", d, overlayOpaque, v)
		}
	}
	if st, _ := lstat(t, filepath.Join(root, "x")); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("x of this layer was whited out: mode %o", st.Mode)
	}
	if _, ok := lstat(t, filepath.Join(root, "d/n")); !ok {
		t.Error("d/n missing")
	}
	assertNoMarkers(t, root)
}

func TestApplyCountsWholeStream(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	data := layer(t, ent{name: "f", body: "hello"})
	padded := append(bytes.Clone(data), make([]byte, 10240)...) // GNU tar record padding
	n, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(padded), ApplyOptions{})
	if err != nil || n != int64(len(padded)) {
		t.Fatalf("Apply = %d, %v; want %d bytes", n, err, len(padded))
	}
}

func TestApplyCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(layer(t, ent{name: "f"})), ApplyOptions{})
	if err == nil {
		t.Fatal("Apply with a cancelled context succeeded")
	}
}

func TestApplyDirTimesLastHeaderWins(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root := t.TempDir()
	later := epoch.Add(time.Hour)
	apply(t, root, layer(t,
		ent{name: "d/", typ: tar.TypeDir},
		ent{name: "d/f", body: "f"},
		ent{name: "d/", typ: tar.TypeDir, mtime: later},
		ent{name: "d/g", body: "g"},
	), WhiteoutDelete)
	if st, _ := lstat(t, filepath.Join(root, "d")); st.Mtim.Sec != later.Unix() {
		t.Errorf("d mtime %d, want %d", st.Mtim.Sec, later.Unix())
	}
}

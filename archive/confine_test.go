package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// TestApplyRefusesEscapes feeds hostile layers and checks both the refusal
// and that nothing beside root (the sentinel) changed.
// escapeCase is a hostile layer and the entry its refusal must name.
type escapeCase struct {
	name      string
	layer     func(t *testing.T, j *jail) []byte
	noDevices bool
	entry     string
}

func escapeCases() []escapeCase {
	sym := func(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }
	file := func(name string) ent { return ent{name: name, body: "pwned"} }
	hard := func(name, target string) ent { return ent{name: name, typ: tar.TypeLink, link: target} }
	return []escapeCase{
		{name: "dotdot", entry: "../sentinel/pwned",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, file("../sentinel/pwned")) }},
		{name: "nested dotdot", entry: "a/../../sentinel/keep",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, file("a/../../sentinel/keep")) }},
		{name: "absolute name", entry: "/sentinel",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, file(j.sentinel+"/pwned")) }},
		{name: "absolute symlink parent", entry: "evil/pwned",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, sym("evil", j.sentinel), file("evil/pwned")) }},
		{name: "relative symlink parent", entry: "evil/keep",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, sym("evil", "../sentinel"), file("evil/keep")) }},
		{name: "symlink chain", entry: "a/sub/pwned",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, sym("b", "d/../../sentinel"), ent{name: "d/", typ: tar.TypeDir}, sym("a", "b"), file("a/sub/pwned"))
			}},
		{name: "symlink dir then nested dir", entry: "evil/newdir/",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, sym("evil", "/../../.."+j.sentinel), ent{name: "evil/newdir/", typ: tar.TypeDir})
			}},
		{name: "hardlink outside", entry: "h",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, hard("h", "../sentinel/keep")) }},
		{name: "hardlink absolute", entry: "h",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, hard("h", j.sentinel+"/keep")) }},
		{name: "hardlink through symlink", entry: "h",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, sym("evil", "../sentinel"), hard("h", "evil/keep"))
			}},
		{name: "whiteout through symlink", entry: "evil/.wh.keep",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, sym("evil", j.sentinel), file("evil/.wh.keep")) }},
		{name: "opaque through symlink", entry: "evil/sub/.wh..wh..opq",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, sym("evil", "../"), file("evil/sub/.wh..wh..opq"))
			}},
		{name: "char device", entry: "null", noDevices: true,
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "null", typ: tar.TypeChar, major: 1, minor: 3})
			}},
		{name: "block device", entry: "sda", noDevices: true,
			layer: func(t *testing.T, j *jail) []byte { return layer(t, ent{name: "sda", typ: tar.TypeBlock, major: 8}) }},
		{name: "unknown type", entry: "weird",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, ent{name: "weird", typ: 'Z'}) }},
		{name: "truncated content", entry: "big",
			layer: func(t *testing.T, j *jail) []byte {
				data := layer(t, ent{name: "big", body: strings.Repeat("x", 4096)})
				return data[:512+1000]
			}},
		{name: "no end marker", entry: "truncated",
			layer: func(t *testing.T, j *jail) []byte {
				data := layer(t, file("a"), file("b"))
				return data[:len(data)-1024]
			}},
		{name: "cut header", entry: "truncated",
			layer: func(t *testing.T, j *jail) []byte {
				data := layer(t, file("a"), file("b"))
				return data[:1024+100]
			}},
		{name: "cached dir replaced by outward symlink", entry: "d/keep",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "d/", typ: tar.TypeDir}, file("d/f"), sym("d", "../sentinel"), file("d/keep"))
			}},
		{name: "cached dir replaced by absolute symlink", entry: "d/pwned",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, file("d/f"), sym("d", j.sentinel), file("d/pwned"))
			}},
		{name: "cached dir replaced by a file", entry: "d/x",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, file("d/f"), file("d"), file("d/x")) }},
		{name: "parent is a file", entry: "f/x",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, file("f"), file("f/x")) }},
		{name: "fifo as parent", entry: "p/x",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, ent{name: "p", typ: tar.TypeFifo}, file("p/x")) }},
		{name: "fifo as opaque dir", entry: "p/.wh..wh..opq",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "p", typ: tar.TypeFifo}, file("p/.wh..wh..opq"))
			}},
		{name: "sparse bomb", entry: `"bomb": sparse`, layer: sparseBomb},
		{name: "malformed whiteout", entry: ".wh...",
			layer: func(t *testing.T, j *jail) []byte { return layer(t, file(".wh...")) }},
	}
}

func TestApplyRefusesEscapes(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	for _, res := range resolvers {
		for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
			for _, tt := range escapeCases() {
				t.Run(res.name+"/"+mode.String()+"/"+tt.name, func(t *testing.T) {
					t.Parallel()
					j := newJail(t)
					data := tt.layer(t, j)
					opts := ApplyOptions{Mode: mode, NoDevices: tt.noDevices}
					_, err := applyTar(context.Background(), j.root, bytes.NewReader(data), opts, res.noOpenat2)
					if !errors.Is(err, errdefs.ErrInvalidArgument) {
						t.Fatalf("Apply = %v, want an ErrInvalidArgument", err)
					}
					if !strings.Contains(err.Error(), tt.entry) {
						t.Errorf("error %q does not name %q", err, tt.entry)
					}
					j.assertUntouched(t)
				})
			}
		}
	}
}

// resolvers are the two ways Apply resolves parent directories: openat2
// and, for kernels without it, os.Root.
var resolvers = []struct {
	name      string
	noOpenat2 bool
}{{"openat2", false}, {"os.Root", true}}

// TestApplySymlinksAreData checks that links pointing outside root are
// written as they are and replaced, never followed.
func TestApplySymlinksAreData(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	tests := []struct {
		name  string
		layer func(t *testing.T, j *jail) []byte
		check func(t *testing.T, j *jail)
	}{
		{name: "file replaces outward symlink",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "l", typ: tar.TypeSymlink, link: j.sentinel + "/keep"}, ent{name: "l", body: "in root"})
			},
			check: func(t *testing.T, j *jail) {
				if st, _ := lstat(t, filepath.Join(j.root, "l")); st.Size != int64(len("in root")) {
					t.Errorf("l has size %d", st.Size)
				}
			}},
		{name: "dir replaces outward symlink",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "d", typ: tar.TypeSymlink, link: j.sentinel}, ent{name: "d/", typ: tar.TypeDir}, ent{name: "d/f", body: "f"})
			},
			check: func(t *testing.T, j *jail) {
				if _, ok := lstat(t, filepath.Join(j.root, "d/f")); !ok {
					t.Error("d/f missing")
				}
			}},
		{name: "hardlink to outward symlink links the symlink",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "s", typ: tar.TypeSymlink, link: j.sentinel + "/keep"}, ent{name: "h", typ: tar.TypeLink, link: "s"})
			},
			check: func(t *testing.T, j *jail) {
				s, _ := lstat(t, filepath.Join(j.root, "s"))
				h, _ := lstat(t, filepath.Join(j.root, "h"))
				if s.Ino != h.Ino {
					t.Errorf("h is not a link of the symlink s")
				}
			}},
		{name: "whiteout removes an outward symlink, not its target",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "s", typ: tar.TypeSymlink, link: j.sentinel})
			},
			check: func(t *testing.T, j *jail) {
				apply(t, j.root, layer(t, ent{name: ".wh.s"}), WhiteoutDelete)
				if _, ok := lstat(t, filepath.Join(j.root, "s")); ok {
					t.Error("s survived its whiteout")
				}
			}},
		{name: "opaque removes outward symlinks, not their targets",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "d/", typ: tar.TypeDir},
					ent{name: "d/s", typ: tar.TypeSymlink, link: j.sentinel},
					ent{name: "d/k", typ: tar.TypeSymlink, link: "../../sentinel/keep"})
			},
			check: func(t *testing.T, j *jail) {
				apply(t, j.root, layer(t, ent{name: "d/.wh..wh..opq"}), WhiteoutDelete)
				if got := dirNames(t, filepath.Join(j.root, "d")); len(got) != 0 {
					t.Errorf("opaque d still holds %v", got)
				}
			}},
		{name: "absolute and dotdot targets kept",
			layer: func(t *testing.T, j *jail) []byte {
				return layer(t, ent{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
					ent{name: "up", typ: tar.TypeSymlink, link: "../../../../etc/shadow"})
			},
			check: func(t *testing.T, j *jail) {
				for p, want := range map[string]string{"bin/sh": "/bin/busybox", "up": "../../../../etc/shadow"} {
					buf := make([]byte, 128)
					n, err := unix.Readlink(filepath.Join(j.root, p), buf)
					if err != nil || string(buf[:n]) != want {
						t.Errorf("%s -> %q (%v), want %q", p, buf[:n], err, want)
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := newJail(t)
			apply(t, j.root, tt.layer(t, j), WhiteoutDelete)
			tt.check(t, j)
			j.assertUntouched(t)
		})
	}
}

// sparseBomb is a few KiB of GNU tar declaring a 1 TiB sparse file.
func sparseBomb(t *testing.T, _ *jail) []byte {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar command not installed; cannot make a sparse archive")
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "bomb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 1<<39); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("tar", "--sparse", "--format=gnu", "-C", dir, "-cf", "-", "bomb").Output()
	if err != nil {
		t.Fatalf("tar --sparse: %v", err)
	}
	return out
}

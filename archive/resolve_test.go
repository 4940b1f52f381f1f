package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestApplyReplacedParents checks that a directory Apply resolved once is
// not used after the layer replaced or removed it (the descriptor cache of
// resolve.go): later entries go where the path now leads.
func TestApplyReplacedParents(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := func(n string) ent { return ent{name: n, typ: tar.TypeDir} }
	file := func(n string) ent { return ent{name: n, body: n} }
	sym := func(n, target string) ent { return ent{name: n, typ: tar.TypeSymlink, link: target} }
	tests := []struct {
		name          string
		mode          WhiteoutMode
		lower, layer  []ent
		present, gone []string
	}{
		{name: "symlink retargeted", layer: []ent{dir("x/"), dir("y/"), sym("d", "x"), file("d/f1"), sym("d", "y"), file("d/f2")},
			present: []string{"x/f1", "y/f2"}, gone: []string{"x/f2", "y/f1"}},
		{name: "symlink retargeted overlay", mode: WhiteoutOverlay,
			layer:   []ent{dir("x/"), dir("y/"), sym("d", "x"), file("d/f1"), sym("d", "y"), file("d/f2")},
			present: []string{"x/f1", "y/f2"}, gone: []string{"x/f2", "y/f1"}},
		{name: "directory replaced by symlink", layer: []ent{dir("x/"), dir("d/"), file("d/f1"), sym("d", "x"), file("d/f2")},
			present: []string{"x/f2"}, gone: []string{"x/f1"}},
		{name: "whiteout of a resolved directory", lower: []ent{file("d/old")},
			layer:   []ent{file("d/new"), file(".wh.d"), file("d/after")},
			present: []string{"d/after"}, gone: []string{"d/new", "d/old"}},
		{name: "opaque removes a hardlink's directory", lower: []ent{file("d/e/f")},
			layer:   []ent{{name: "h", typ: tar.TypeLink, link: "d/e/f"}, file("d/.wh..wh..opq"), file("d/e/new")},
			present: []string{"h", "d/e/new"}, gone: []string{"d/e/f"}},
	}
	for _, res := range resolvers {
		for _, tt := range tests {
			t.Run(res.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				root := t.TempDir()
				if tt.lower != nil {
					apply(t, root, layer(t, tt.lower...), tt.mode)
				}
				data := layer(t, tt.layer...)
				if _, err := applyTar(context.Background(), root, bytes.NewReader(data), ApplyOptions{Mode: tt.mode}, res.noOpenat2); err != nil {
					t.Fatalf("apply: %v", err)
				}
				for _, p := range tt.present {
					if _, ok := lstat(t, filepath.Join(root, p)); !ok {
						t.Errorf("%s missing", p)
					}
				}
				for _, p := range tt.gone {
					if _, ok := lstat(t, filepath.Join(root, p)); ok {
						t.Errorf("%s present", p)
					}
				}
			})
		}
	}
}

// TestApplyRevisitsDirectories writes into more directories than the
// cache holds, round robin, so that every entry after the first round
// finds its directory evicted.
func TestApplyRevisitsDirectories(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	const dirs, rounds = 3 * dirCacheSize, 3
	var ents []ent
	for r := range rounds {
		for d := range dirs {
			ents = append(ents, ent{name: fmt.Sprintf("a/d%02d/f%d", d, r), body: fmt.Sprint(d, r)})
		}
	}
	root := t.TempDir()
	apply(t, root, layer(t, ents...), WhiteoutOverlay)
	for _, e := range ents {
		got, err := os.ReadFile(filepath.Join(root, e.name))
		if err != nil || string(got) != e.body {
			t.Errorf("%s = %q, %v; want %q", e.name, got, err, e.body)
		}
	}
}

// TestApplyClosesDescriptors checks that Apply leaves no descriptor open,
// whether it succeeds or refuses a layer. It is not parallel, so that the
// count of open descriptors is its own.
func TestApplyClosesDescriptors(t *testing.T) {
	requireRoot(t)
	var ents []ent
	for d := range 2 * dirCacheSize {
		ents = append(ents, ent{name: fmt.Sprintf("d%02d/", d), typ: tar.TypeDir}, ent{name: fmt.Sprintf("d%02d/e/f", d), body: "f"})
	}
	ents = append(ents, ent{name: "h", typ: tar.TypeLink, link: "d00/e/f"}, ent{name: ".wh.d01"}, ent{name: "d02/.wh..wh..opq"})
	good := layer(t, ents...)
	bad := layer(t, append(ents, ent{name: "d03", typ: tar.TypeSymlink, link: "/"}, ent{name: "d03/x", body: "x"})...)
	for _, res := range resolvers {
		before := openFDs(t)
		for _, data := range [][]byte{good, bad} {
			_, _ = applyTar(context.Background(), t.TempDir(), bytes.NewReader(data), ApplyOptions{}, res.noOpenat2)
		}
		if after := openFDs(t); after != before {
			t.Errorf("%s: %d descriptors open after Apply, %d before", res.name, after, before)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

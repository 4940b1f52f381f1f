package archive

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountOverlay mounts lower+upper on a fresh directory and returns it with
// an unmount func; the mount is also removed at cleanup if a test fails.
func mountOverlay(t *testing.T, lower, upper string) (string, func()) {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	work, merged := filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// redirect_dir and metacopy off: upper dirs must be plain changesets.
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",index=off,redirect_dir=off,metacopy=off"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EPERM) {
			t.Skipf("kernel cannot mount overlayfs here: %v", err)
		}
		t.Fatalf("mount overlay: %v", err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			if err := unix.Unmount(merged, 0); err != nil {
				t.Errorf("unmount %s: %v", merged, err)
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)
	return merged, unmount
}

func baseLayer(t *testing.T) []byte {
	t.Helper()
	return layer(t,
		ent{name: "a", body: "a"},
		ent{name: "keep", body: "keep"},
		ent{name: "d/", typ: tar.TypeDir},
		ent{name: "d/x", body: "x"},
		ent{name: "d/sub/", typ: tar.TypeDir},
		ent{name: "d/sub/y", body: "y"},
		ent{name: "gone/", typ: tar.TypeDir},
		ent{name: "gone/z", body: "z"},
		ent{name: "e/", typ: tar.TypeDir},
		ent{name: "e/old", body: "old"},
	)
}

// TestOverlayApplyMounted applies a layer as overlay marks, mounts it over
// its parent, and checks the merged view equals the same layer applied with
// real deletions.
func TestOverlayApplyMounted(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	base := baseLayer(t)
	change := layer(t,
		ent{name: ".wh.a"},
		ent{name: ".wh.gone"},
		ent{name: "d/", typ: tar.TypeDir, mode: 0o750},
		ent{name: "d/.wh..wh..opq"},
		ent{name: "d/new", body: "new"},
		ent{name: "e/new", body: "n"}, // opaque marker after a sibling
		ent{name: "e/.wh..wh..opq"},
		ent{name: "e/.wh..wh.plnk"},
	)
	lower, upper, flat := t.TempDir(), t.TempDir(), t.TempDir()
	apply(t, lower, base, WhiteoutDelete)
	apply(t, flat, base, WhiteoutDelete)
	apply(t, flat, change, WhiteoutDelete)
	apply(t, upper, change, WhiteoutOverlay)
	merged, _ := mountOverlay(t, lower, upper)
	sameTars(t, "merged overlay vs flat apply", tarOf(t, merged), tarOf(t, flat))
	if got, want := dirNames(t, merged), []string{"d", "e", "keep"}; !slices.Equal(got, want) {
		t.Errorf("merged root has %v, want %v", got, want)
	}
	if got := dirNames(t, filepath.Join(merged, "d")); !slices.Equal(got, []string{"new"}) {
		t.Errorf("opaque d shows %v, want [new]", got)
	}
}

// TestOverlayDiffRealOps makes changes through a real overlay mount and
// checks the upperdir diff: whiteouts, opaque markers, round trips in both
// modes.
func TestOverlayDiffRealOps(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	base := baseLayer(t)
	lower, upper := t.TempDir(), t.TempDir()
	apply(t, lower, base, WhiteoutDelete)
	merged, unmount := mountOverlay(t, lower, upper)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(merged, "a")))
	must(os.RemoveAll(filepath.Join(merged, "d")))
	must(os.Mkdir(filepath.Join(merged, "d"), 0o700))
	must(os.WriteFile(filepath.Join(merged, "d/fresh"), []byte("fresh"), 0o644))
	must(os.WriteFile(filepath.Join(merged, "keep"), []byte("changed"), 0o644))
	must(os.Chmod(filepath.Join(merged, "e/old"), 0o600))
	must(os.Symlink("/keep", filepath.Join(merged, "link")))
	want := tarOf(t, merged)
	unmount()

	d := diffOf(t, "", upper, WhiteoutOverlay)
	entries := listing(t, d)
	for _, w := range []string{"0 .wh.a", "0 keep", "0 e/old", "2 link -> /keep", "0 d/fresh"} {
		if !slices.Contains(entries, w) {
			t.Errorf("diff lacks %q: %q", w, entries)
		}
	}
	if i := slices.Index(entries, "5 d/"); i < 0 || i+1 >= len(entries) || entries[i+1] != "0 d/.wh..wh..opq" {
		t.Errorf("opaque marker does not follow d/: %q", entries)
	}
	for _, e := range entries {
		if strings.Contains(e, "trusted.overlay") || strings.HasPrefix(e, "3 ") {
			t.Errorf("overlay internals leaked into the layer: %q", e)
		}
	}

	flat := t.TempDir()
	apply(t, flat, base, WhiteoutDelete)
	apply(t, flat, d, WhiteoutDelete)
	sameTars(t, "lower + overlay diff vs merged", tarOf(t, flat), want)

	upper2 := t.TempDir()
	apply(t, upper2, d, WhiteoutOverlay)
	sameTars(t, "overlay diff of re-applied upper", diffOf(t, "", upper2, WhiteoutOverlay), d)
	merged2, _ := mountOverlay(t, lower, upper2)
	sameTars(t, "merged view of re-applied upper", tarOf(t, merged2), want)

	changes, err := Changes(context.Background(), lower, upper, WhiteoutOverlay)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges := []Change{
		{"/a", ChangeDelete}, {"/d", ChangeModify}, {"/d/fresh", ChangeAdd}, {"/d/sub", ChangeDelete},
		{"/d/x", ChangeDelete}, {"/e", ChangeModify}, {"/e/old", ChangeModify}, {"/keep", ChangeModify},
		{"/link", ChangeAdd},
	}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("Changes = %v\nwant %v", changes, wantChanges)
	}
}

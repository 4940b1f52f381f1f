package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
}

// mountpoint returns a fresh directory that is unmounted on cleanup.
func mountpoint(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := UnmountAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return dir
}

func TestBindReadOnly(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	for _, bind := range []string{"bind", "rbind"} {
		t.Run(bind, func(t *testing.T) {
			t.Parallel()
			src := t.TempDir()
			sub := filepath.Join(src, "sub")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			// A submount inside the source: rbind ro must make it read-only too.
			if err := (Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}).Mount(sub); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = UnmountAll(sub) })
			target := mountpoint(t)
			if err := All([]Mount{{Type: "bind", Source: src, Options: []string{bind, "ro"}}}, target); err != nil {
				t.Fatal(err)
			}
			err := os.WriteFile(filepath.Join(target, "f"), nil, 0o644)
			if !errors.Is(err, unix.EROFS) {
				t.Fatalf("write through ro bind: %v, want EROFS", err)
			}
			if bind == "rbind" {
				err := os.WriteFile(filepath.Join(target, "sub", "f"), nil, 0o644)
				if !errors.Is(err, unix.EROFS) {
					t.Fatalf("write into submount of ro rbind: %v, want EROFS", err)
				}
			}
			if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
				t.Fatalf("source must stay writable: %v", err)
			}
		})
	}
}

func TestOverlayManyLayers(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	base := t.TempDir()
	const layers = 300
	var lowers []string
	for i := range layers {
		// Long names make the option string far larger than a page.
		dir := filepath.Join(base, fmt.Sprintf("layer-with-a-long-name-%04d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append([]string{dir}, lowers...)
	}
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "lowerdir=" + JoinLowerdir(lowers), "upperdir=" + upper, "workdir=" + work,
	}}
	if n := len(strings.Join(m.Options, ",")); n <= os.Getpagesize() {
		t.Fatalf("options are only %d bytes; the test must exceed a page", n)
	}
	target := mountpoint(t)
	if err := All([]Mount{m}, target); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != layers {
		t.Fatalf("merged view has %d entries, want %d", len(entries), layers)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Fatalf("write did not land in upperdir: %v", err)
	}
}

func TestOverlayErrorNamesCause(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	for _, d := range []string{lower, upper} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		opts []string
		want string
	}{
		{"missing lowerdir", []string{"lowerdir=" + filepath.Join(base, "missing")}, "missing"},
		{"workdir inside upperdir", []string{"lowerdir=" + lower, "upperdir=" + upper,
			"workdir=" + upper}, "create overlay"},
		{"unknown option", []string{"lowerdir=" + lower, "nosuchoption=1"}, "nosuchoption"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Mount{Type: "overlay", Source: "overlay", Options: tt.opts}.Mount(mountpoint(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLegacyOptionLimit(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	m := Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "x=" + strings.Repeat("a", os.Getpagesize())}}
	err := m.Mount(mountpoint(t))
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want ErrInvalidArgument", err)
	}
}

func TestUnmount(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	target := mountpoint(t)
	if err := Unmount(target); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Unmount of plain dir = %v, want ErrNotFound", err)
	}
	tmpfs := Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}
	if err := All([]Mount{tmpfs, tmpfs, tmpfs}, target); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after UnmountAll: %v, want ErrNotFound", err)
	}
	if err := UnmountAll(filepath.Join(target, "nonexistent")); err != nil {
		t.Fatalf("UnmountAll of missing path: %v", err)
	}
}

func TestWithTempMount(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	src := t.TempDir()
	var seen string
	err := WithTempMount(context.Background(), []Mount{{Type: "bind", Source: src, Options: []string{"rbind"}}},
		func(root string) error {
			seen = root
			return os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "f")); err != nil {
		t.Fatalf("write through temp mount: %v", err)
	}
	if _, err := os.Stat(seen); !os.IsNotExist(err) {
		t.Fatalf("temporary mount point %s still exists: %v", seen, err)
	}
}

func TestUnmountAllThroughSymlinkedParent(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	target := mountpoint(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(filepath.Dir(target), link); err != nil {
		t.Fatal(err)
	}
	if err := (Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}).Mount(target); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(filepath.Join(link, filepath.Base(target))); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("still mounted after UnmountAll via symlink: %v", err)
	}
}

// TestOverlayLegacyPath runs the mount(2) fallback that kernels before 6.8
// take, here where it can be checked against the new API's result.
func TestOverlayLegacyPath(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	if legacyParser() {
		t.Skip("this kernel takes the legacy path for every overlay mount")
	}
	base := t.TempDir()
	var lowers []string
	for i := range 2 {
		dir := filepath.Join(base, fmt.Sprint(i))
		file := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, dir)
	}
	target := mountpoint(t)
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + JoinLowerdir(lowers)}}
	if err := mountLegacy(m, target); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(target)
	if err != nil || len(entries) != 2 {
		t.Fatalf("legacy overlay lists %v, %v", entries, err)
	}
	long := Mount{Type: "overlay", Source: "overlay",
		Options: []string{"lowerdir=" + JoinLowerdir(slices.Repeat(lowers, 2000))}}
	if err := mountLegacy(long, mountpoint(t)); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("legacy mount with a long option string: %v, want ErrInvalidArgument", err)
	}
}

func TestOverlayAwkwardPaths(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	base := t.TempDir()
	var lowers []string
	for i, name := range []string{"with:colon", "with,comma", `back\slash`} {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, dir)
	}
	target := mountpoint(t)
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + JoinLowerdir(lowers)}}
	if err := All([]Mount{m}, target); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(target)
	if err != nil || len(entries) != len(lowers) {
		t.Fatalf("overlay of awkward paths lists %v, %v", entries, err)
	}
}

package nsenter

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCreateDoRemove(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	path := filepath.Join(t.TempDir(), "ns")
	if err := Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(path) })
	if !Mounted(path) {
		t.Fatal("not mounted after Create")
	}
	// Create refuses an existing path and leaves it alone.
	if err := Create(path); err == nil || !Mounted(path) {
		t.Fatalf("second Create = %v, mounted %v", err, Mounted(path))
	}
	var inner, outer unix.Stat_t
	if err := Do(path, func() error { return unix.Stat("/proc/thread-self/ns/net", &inner) }); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &outer); err != nil {
		t.Fatal(err)
	}
	if inner.Ino != outer.Ino {
		t.Fatalf("Do ran in netns inode %d, want %d", inner.Ino, outer.Ino)
	}
	// The calling goroutine's namespace is untouched.
	var self unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	if self.Ino == outer.Ino {
		t.Fatal("caller ended up inside the namespace")
	}
	want := errors.New("from fn")
	if err := Do(path, func() error { return want }); err != want {
		t.Fatalf("Do returned %v, want fn's error", err)
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if Mounted(path) {
		t.Fatal("still mounted after Remove")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file left after Remove: %v", err)
	}
	// Removing twice, or a path that never existed, is fine.
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := Do(path, func() error { return nil }); err == nil {
		t.Fatal("Do on a removed namespace succeeded")
	}
}

func TestMountedPlainFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if Mounted(path) || Mounted(path+".missing") {
		t.Fatal("a plain or missing file counts as a namespace")
	}
}

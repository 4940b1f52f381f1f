package storage

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestDirsCleanup(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d, err := NewDirs(root)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(id string) {
		staged, err := d.Stage()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(staged, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := d.Publish(staged, id); err != nil {
			t.Fatal(err)
		}
	}
	publish("kept")
	publish("orphan")
	leftover, err := d.Stage()
	if err != nil {
		t.Fatal(err)
	}
	trash := filepath.Join(root, "trash", "x-1")
	if err := os.MkdirAll(filepath.Join(trash, "fs", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}

	if err := d.Cleanup(context.Background(), map[string]string{"kept": "key"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		filepath.Join(d.Path("kept"), "f"): true,
		d.Path("orphan"):                   false,
		leftover:                           false,
		trash:                              false,
	} {
		_, err := os.Stat(path)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", path, got, want)
		}
	}
	if err := d.Discard("kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path("kept")); !os.IsNotExist(err) {
		t.Fatalf("discarded snapshot still there: %v", err)
	}
	if err := d.Discard("never-existed"); err != nil {
		t.Fatalf("Discard of a missing id: %v", err)
	}
}

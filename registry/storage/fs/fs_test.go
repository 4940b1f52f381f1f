package fs_test

import (
	"os"
	"path/filepath"
	"testing"

	"berth/registry/storage"
	"berth/registry/storage/fs"
	"berth/registry/storage/storagetest"
)

func TestDriver(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		d, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestPrivatePermissions(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "store")
	d, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(t.Context(), "auth/key.pem", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{root: 0o700, filepath.Join(root, "auth"): 0o700, filepath.Join(root, "auth", "key.pem"): 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}

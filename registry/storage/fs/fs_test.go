package fs_test

import (
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

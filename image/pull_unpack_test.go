package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/archive"
	"berth/mount"
)

// TestPullDetachedLayers holds the base layer's download back until the
// layers above it have arrived, so that on overlay2 they are unpacked as
// detached diffs before their parents exist, and checks that whiteouts
// and opaque directories still hide the lower layers' files. vfs, which
// cannot unpack a layer without its parent, must give the same tree.
func TestPullDetachedLayers(t *testing.T) {
	layers := []testLayer{
		{files: map[string]string{"a": "base a\n", "dir/": "", "dir/x": "lower x\n", "keep": "kept\n"}, comp: archive.Gzip},
		{files: map[string]string{".wh.a": "w", "dir/": "", "dir/.wh..wh..opq": "w", "dir/z": "upper z\n"}, comp: archive.Gzip},
		{files: map[string]string{"top": "top\n"}, comp: archive.Gzip},
	}
	want := map[string]string{"a": "", "dir/x": "", "dir/z": "upper z\n", "keep": "kept\n", "top": "top\n"}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			reg := newTestRegistry(t)
			img := pushTestImage(t, reg.host+"/berth-test/detached:v1", layers, true, false)
			base := img.blobs[0].Digest
			upper := func() bool { return reg.gets(img.blobs[1].Digest) > 0 && reg.gets(img.blobs[2].Digest) > 0 }
			reg.setFault(func(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+base.String()) {
					// Until the upper layers' GETs have come in and
					// been read.
					for deadline := time.Now().Add(2 * time.Second); !upper() && time.Now().Before(deadline); {
						time.Sleep(10 * time.Millisecond)
					}
					time.Sleep(300 * time.Millisecond)
				}
				return w, false
			})
			s := newPullService(t, d, newRemote())
			if err := s.PullImage(context.Background(), img.ref.String(), PullOptions{}, nil); err != nil {
				t.Fatal(err)
			}
			for p, content := range want {
				got, err := readPulled(t, s, img.ref.String(), p)
				switch {
				case content == "" && !errors.Is(err, fs.ErrNotExist):
					t.Errorf("%s: %q, %v; want it hidden", p, got, err)
				case content != "" && got != content:
					t.Errorf("%s: %q, %v; want %q", p, got, err, content)
				}
			}
			assertNoIngests(t, s)
			assertNoStaged(t, s)
		})
	}
}

// readPulled reads path in the image ref's merged tree.
func readPulled(t *testing.T, s *Service, ref, path string) (string, error) {
	t.Helper()
	ctx := context.Background()
	id, err := s.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	top, err := s.TopLayer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("view-%d", time.Now().UnixNano())
	mounts, err := s.sn.View(ctx, key, top)
	if err != nil {
		t.Fatal(err)
	}
	defer s.sn.Remove(ctx, key)
	var data []byte
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		var err error
		data, err = os.ReadFile(filepath.Join(root, path))
		return err
	})
	return string(data), err
}

// assertNoStaged checks that no detached diff was left in the
// snapshotter's staging directory.
func assertNoStaged(t *testing.T, s *Service) {
	t.Helper()
	dp, ok := s.sn.(diffPreparer)
	if !ok {
		return
	}
	probe, err := dp.PrepareDiff(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer dp.DiscardDiff(probe)
	staging := filepath.Dir(filepath.Dir(probe))
	entries, err := os.ReadDir(staging)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(filepath.Dir(probe)) {
			t.Errorf("staged directory left: %s", e.Name())
		}
	}
}

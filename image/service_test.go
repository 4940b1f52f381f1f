package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth/content"
	"berth/errdefs"
	"berth/snapshot"
	"berth/snapshot/overlay"
	"berth/snapshot/vfs"
	"berth/testutil"

	imagetypes "github.com/moby/moby/api/types/image"
	bolt "go.etcd.io/bbolt"
)

type driverCase struct {
	name string
	new  func(ctx context.Context, root string, db *bolt.DB) (snapshot.Snapshotter, error)
}

var drivers = []driverCase{
	{"overlay2", func(ctx context.Context, root string, db *bolt.DB) (snapshot.Snapshotter, error) {
		return overlay.New(ctx, root, db)
	}},
	{"vfs", func(ctx context.Context, root string, db *bolt.DB) (snapshot.Snapshotter, error) {
		return vfs.New(ctx, root, db)
	}},
}

func newService(t *testing.T, d driverCase) *Service {
	t.Helper()
	testutil.RequiresRoot(t)
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "berth.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cs, err := content.New(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := d.new(context.Background(), filepath.Join(root, "snapshots"), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	s, err := New(Options{DB: db, Content: cs, Snapshotter: sn, Driver: d.name})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func importBusybox(t *testing.T, s *Service, ref string, changes ...string) string {
	t.Helper()
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := s.ImportImage(context.Background(), f, ImportOptions{Ref: ref, Changes: changes})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return id
}

func forEachDriver(t *testing.T, fn func(t *testing.T, s *Service)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newService(t, d))
		})
	}
}

func TestImportInspectHistory(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		id := importBusybox(t, s, "busybox:latest", `CMD ["sh"]`, "ENV A=1 B='two words'", "LABEL x=y", "EXPOSE 80/tcp 53/udp", "WORKDIR /data")
		ins, err := s.ImageInspect(ctx, "busybox")
		if err != nil {
			t.Fatal(err)
		}
		if ins.ID != id || len(ins.RepoTags) != 1 || ins.RepoTags[0] != "busybox:latest" {
			t.Fatalf("inspect: %+v", ins.InspectResponse)
		}
		c := ins.Config
		if strings.Join(c.Cmd, " ") != "sh" || c.WorkingDir != "/data" || c.Labels["x"] != "y" {
			t.Fatalf("changes not applied: %+v", c)
		}
		if strings.Join(c.Env, ",") != "A=1,B=two words" {
			t.Fatalf("env: %q", c.Env)
		}
		if _, ok := c.ExposedPorts["53/udp"]; !ok {
			t.Fatalf("expose: %v", c.ExposedPorts)
		}
		if ins.Size < 1<<20 || len(ins.RootFS.Layers) != 1 || ins.Os != "linux" {
			t.Fatalf("size/rootfs: %d %v", ins.Size, ins.RootFS)
		}
		h, err := s.ImageHistory(ctx, id[len("sha256:"):][:12])
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0].Comment != "Imported from -" || h[0].ID != id || h[0].Size != ins.Size {
			t.Fatalf("history: %+v", h)
		}
	})
}

func TestTagAndRemove(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		id := importBusybox(t, s, "img:one")
		if err := s.TagImage(ctx, "img:one", "img:two"); err != nil {
			t.Fatal(err)
		}
		if err := s.TagImage(ctx, "img:one", "other/img:three"); err != nil {
			t.Fatal(err)
		}
		_, err := s.ImageDelete(ctx, id, DeleteOptions{})
		if !errdefs.Conflict(err) || !strings.Contains(err.Error(), "referenced in multiple repositories") {
			t.Fatalf("rmi by id with tags in two repos: %v", err)
		}
		resp, err := s.ImageDelete(ctx, "img:one", DeleteOptions{})
		if err != nil || len(resp) != 1 || resp[0].Untagged != "img:one" {
			t.Fatalf("untag one: %+v %v", resp, err)
		}
		if _, err := s.ImageDelete(ctx, "other/img:three", DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		resp, err = s.ImageDelete(ctx, "img:two", DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"Untagged: img:two", "Deleted: " + id}
		got := describe(resp)
		if len(got) < 3 || got[0] != want[0] || got[1] != want[1] || !strings.HasPrefix(got[2], "Deleted: sha256:") {
			t.Fatalf("last untag: %q", got)
		}
		assertNoImages(t, s)
	})
}

func describe(resp []imagetypes.DeleteResponse) []string {
	var out []string
	for _, r := range resp {
		if r.Untagged != "" {
			out = append(out, "Untagged: "+r.Untagged)
		} else {
			out = append(out, "Deleted: "+r.Deleted)
		}
	}
	return out
}

func assertNoImages(t *testing.T, s *Service) {
	t.Helper()
	ctx := context.Background()
	list, err := s.Images(ctx, ListOptions{All: true})
	if err != nil || len(list) != 0 {
		t.Fatalf("images left: %+v %v", list, err)
	}
	n := 0
	s.sn.Walk(ctx, func(context.Context, snapshot.Info) error { n++; return nil })
	blobs := 0
	s.content.Walk(ctx, func(content.Info) error { blobs++; return nil })
	if n != 0 || blobs != 0 {
		t.Fatalf("left behind: %d snapshots, %d blobs", n, blobs)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		cases := []struct {
			name string
			data []byte
			opts ImportOptions
			want string
		}{
			{"bad change", []byte{}, ImportOptions{Changes: []string{"FOO bar"}}, "unknown instruction: FOO"},
			{"disallowed change", []byte{}, ImportOptions{Changes: []string{"RUN true"}}, "RUN is not a valid change command"},
			{"bad ref", []byte{}, ImportOptions{Ref: "Bad:Ref:x"}, "invalid reference format"},
			{"corrupt gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3}, ImportOptions{Ref: "x:y"}, ""},
			{"not a tar", bytes.Repeat([]byte("garbage!"), 200), ImportOptions{Ref: "x:y"}, ""},
		}
		for _, tc := range cases {
			_, err := s.ImportImage(ctx, bytes.NewReader(tc.data), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
			}
		}
		assertNoImages(t, s)
		if _, err := s.ImageInspect(ctx, "nope:latest"); !errdefs.NotFound(err) || err.Error() != "No such image: nope:latest" {
			t.Fatalf("unknown image: %v", err)
		}
	})
}

func TestPruneDangling(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Service) {
		ctx := context.Background()
		importBusybox(t, s, "")
		keep := importBusybox(t, s, "keep:me", "LABEL v=2")
		list, _ := s.Images(ctx, ListOptions{Filters: map[string][]string{"dangling": {"true"}}})
		if len(list) != 1 || len(list[0].RepoTags) != 0 {
			t.Fatalf("dangling list: %+v", list)
		}
		rep, err := s.ImagesPrune(ctx, false, nil)
		if err != nil || len(rep.ImagesDeleted) == 0 {
			t.Fatalf("prune: %+v %v", rep, err)
		}
		list, _ = s.Images(ctx, ListOptions{})
		if len(list) != 1 || list[0].ID != keep {
			t.Fatalf("after prune: %+v", list)
		}
		// The two images shared their only layer, so prune freed no layer.
		if rep.SpaceReclaimed != 0 {
			t.Fatalf("reclaimed %d from a shared layer", rep.SpaceReclaimed)
		}
	})
}

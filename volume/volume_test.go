package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/errdefs"
	"berth/events"
	"berth/testutil"

	"github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"
	bolt "go.etcd.io/bbolt"
)

type fixture struct {
	root   string
	db     *bolt.DB
	events *events.Bus
	svc    *Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "berth.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{root: root, db: db, events: events.New()}
	f.svc = f.open(t)
	return f
}

// open starts a Service on the fixture's store, as a daemon restart does.
func (f *fixture) open(t *testing.T) *Service {
	t.Helper()
	svc, err := New(context.Background(), Options{DB: f.db, Root: filepath.Join(f.root, "volumes"), Events: f.events})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func names(vols []volumetypes.Volume) string {
	var out []string
	for _, v := range vols {
		out = append(out, v.Name)
	}
	return strings.Join(out, ",")
}

func TestCreateInspectList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	v, err := f.svc.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "web-data", Labels: map[string]string{"tier": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(f.root, "volumes", "web-data", "_data")
	if v.Mountpoint != want || v.Driver != "local" || v.Scope != "local" || v.Labels["tier"] != "web" || v.Options != nil || v.CreatedAt == "" {
		t.Fatalf("create: %+v", v)
	}
	if fi, err := os.Stat(want); err != nil || !fi.IsDir() {
		t.Fatalf("no _data directory: %v", err)
	}
	again, err := f.svc.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "web-data", Labels: map[string]string{"tier": "other"}})
	if err != nil || again.Labels["tier"] != "web" || again.CreatedAt != v.CreatedAt {
		t.Fatalf("create again returns the existing volume: %+v, %v", again, err)
	}
	anon, err := f.svc.VolumeCreate(ctx, volumetypes.CreateRequest{})
	if _, ok := anon.Labels[AnonymousLabel]; err != nil || len(anon.Name) != 64 || !ok {
		t.Fatalf("anonymous: %+v, %v", anon, err)
	}
	if _, err := f.svc.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "tmp1", Driver: "local", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}); err != nil {
		t.Fatal(err)
	}
	// A restarted daemon finds the same volumes.
	f.svc = f.open(t)
	got, err := f.svc.VolumeInspect(ctx, "web-data")
	if err != nil || got.CreatedAt != v.CreatedAt || got.Labels["tier"] != "web" {
		t.Fatalf("inspect after restart: %+v, %v", got, err)
	}
	if _, err := f.svc.VolumeInspect(ctx, "nope"); err == nil || err.Error() != "get nope: no such volume" || !errdefs.NotFound(err) {
		t.Fatalf("inspect missing: %v", err)
	}
	if err := f.svc.Attach(ctx, "c1", []MountPoint{{Type: mount.TypeVolume, Name: "web-data", Destination: "/d"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filters map[string][]string
		want    string
		err     string
	}{
		{filters: nil, want: anon.Name + ",tmp1,web-data"},
		{filters: map[string][]string{"name": {"web"}}, want: "web-data"},
		{filters: map[string][]string{"name": {"^tmp", "web"}}, want: "tmp1,web-data"},
		{filters: map[string][]string{"label": {"tier=web"}}, want: "web-data"},
		{filters: map[string][]string{"label": {AnonymousLabel}}, want: anon.Name},
		{filters: map[string][]string{"dangling": {"true"}}, want: anon.Name + ",tmp1"},
		{filters: map[string][]string{"dangling": {"0"}}, want: "web-data"},
		{filters: map[string][]string{"driver": {"local"}, "dangling": {"false"}}, want: "web-data"},
		{filters: map[string][]string{"driver": {"nfs"}}, want: ""},
		{filters: map[string][]string{"dangling": {"maybe"}}, err: "invalid filter 'dangling=maybe'"},
		{filters: map[string][]string{"colour": {"red"}}, err: "invalid filter 'colour'"},
	} {
		list, err := f.svc.VolumeList(ctx, tc.filters)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errdefs.InvalidArgument(err) {
				t.Errorf("list %v: error %v, want %q", tc.filters, err, tc.err)
			}
			continue
		}
		if err != nil || names(list) != tc.want {
			t.Errorf("list %v = %q, %v; want %q", tc.filters, names(list), err, tc.want)
		}
	}
}

func TestCreateErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	for _, tc := range []struct {
		req  volumetypes.CreateRequest
		err  string
		kind error
	}{
		{req: volumetypes.CreateRequest{Name: "a"}, err: "create a: volume name is too short, names should be at least two alphanumeric characters", kind: errdefs.ErrInvalidArgument},
		{req: volumetypes.CreateRequest{Name: "./data"}, err: `create ./data: "./data" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, kind: errdefs.ErrInvalidArgument},
		{req: volumetypes.CreateRequest{Name: "data", Driver: "flocker"}, err: `create data: error looking up volume plugin flocker: plugin "flocker" not found`, kind: errdefs.ErrNotFound},
		{req: volumetypes.CreateRequest{Name: "data", DriverOpts: map[string]string{"colour": "red"}}, err: `create data: invalid option: "colour"`, kind: errdefs.ErrInvalidArgument},
		{req: volumetypes.CreateRequest{Name: "data", DriverOpts: map[string]string{"type": "tmpfs"}}, err: `create data: missing required option: "device"`, kind: errdefs.ErrInvalidArgument},
		{req: volumetypes.CreateRequest{Name: "data", DriverOpts: map[string]string{"o": "bind", "device": "/x"}}, err: `create data: missing required option: "type"`, kind: errdefs.ErrInvalidArgument},
		{req: volumetypes.CreateRequest{Name: "data", DriverOpts: map[string]string{"size": "1g"}}, err: `create data: quota size requested but no quota support`, kind: errdefs.ErrInvalidArgument},
	} {
		_, err := f.svc.VolumeCreate(ctx, tc.req)
		if err == nil || err.Error() != tc.err || !errdefsIs(err, tc.kind) {
			t.Errorf("create %+v: error %v, want %q", tc.req, err, tc.err)
		}
	}
	if list, _ := f.svc.VolumeList(ctx, nil); len(list) != 0 {
		t.Fatalf("failed creates left volumes: %s", names(list))
	}
	if ents, _ := os.ReadDir(filepath.Join(f.root, "volumes")); len(ents) != 0 {
		t.Fatalf("failed creates left directories: %v", ents)
	}
}

func errdefsIs(err, kind error) bool {
	switch kind {
	case errdefs.ErrNotFound:
		return errdefs.NotFound(err)
	case errdefs.ErrInvalidArgument:
		return errdefs.InvalidArgument(err)
	}
	return false
}

func TestRemoveAndPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	for _, n := range []string{"keep", "used", "old"} {
		if _, err := f.svc.VolumeCreate(ctx, volumetypes.CreateRequest{Name: n, Labels: map[string]string{"set": n}}); err != nil {
			t.Fatal(err)
		}
	}
	mps := []MountPoint{
		{Type: mount.TypeVolume, Name: "used", Destination: "/u", Spec: mount.Mount{Source: "used"}},
		{Type: mount.TypeVolume, Destination: "/anon"},
	}
	if err := f.svc.Attach(ctx, "c1", mps); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Attach(ctx, "c2", mps[:1]); err != nil {
		t.Fatal(err)
	}
	anon := mps[1].Name
	if len(anon) != 64 || mps[1].Source != f.svc.Path(anon) || mps[0].Driver != "local" {
		t.Fatalf("attach filled in %+v", mps)
	}
	os.WriteFile(filepath.Join(f.svc.Path("old"), "f"), []byte("12345"), 0o644)
	err := f.svc.VolumeRemove(ctx, "used", false)
	if err == nil || err.Error() != "remove used: volume is in use - [c1, c2]" || !errdefs.Conflict(err) {
		t.Fatalf("remove in use: %v", err)
	}
	if err := f.svc.VolumeRemove(ctx, "ghost", false); err == nil || err.Error() != "get ghost: no such volume" {
		t.Fatalf("remove missing: %v", err)
	}
	if err := f.svc.VolumeRemove(ctx, "ghost", true); err != nil {
		t.Fatalf("remove -f missing: %v", err)
	}
	// Prune by default takes only unused anonymous volumes: none yet.
	rep, err := f.svc.VolumesPrune(ctx, nil)
	if err != nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	rep, err = f.svc.VolumesPrune(ctx, map[string][]string{"all": {"true"}, "label!": {"set=keep"}})
	if err != nil || strings.Join(rep.VolumesDeleted, ",") != "old" || rep.SpaceReclaimed != 5 {
		t.Fatalf("prune all but keep: %+v, %v", rep, err)
	}
	if _, err := os.Stat(filepath.Join(f.root, "volumes", "old")); !os.IsNotExist(err) {
		t.Fatalf("pruned volume's directory: %v", err)
	}
	if err := f.svc.Detach(ctx, "c2", mps[:1], true); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Detach(ctx, "c1", mps, true); err != nil {
		t.Fatal(err)
	}
	list, _ := f.svc.VolumeList(ctx, nil)
	if names(list) != "keep,used" {
		t.Fatalf("rm -v removes only the anonymous volume: %s", names(list))
	}
	if err := f.svc.VolumeRemove(ctx, "used", false); err != nil {
		t.Fatalf("remove once unused: %v", err)
	}
	if _, err := f.svc.VolumesPrune(ctx, map[string][]string{"until": {"1h"}}); err == nil || err.Error() != "invalid filter 'until'" {
		t.Fatalf("prune bad filter: %v", err)
	}
}

func TestAttachUndoesOnFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.svc.VolumeCreate(ctx, volumetypes.CreateRequest{Name: "pre"}); err != nil {
		t.Fatal(err)
	}
	mps := []MountPoint{
		{Type: mount.TypeVolume, Destination: "/a"},
		{Type: mount.TypeVolume, Name: "pre", Destination: "/p"},
		{Type: mount.TypeVolume, Name: "fresh", Destination: "/f"},
		{Type: mount.TypeVolume, Name: "bad/name", Destination: "/b"},
	}
	err := f.svc.Attach(ctx, "c1", mps)
	if err == nil || !strings.Contains(err.Error(), `"bad/name" includes invalid characters`) {
		t.Fatalf("attach: %v", err)
	}
	list, _ := f.svc.VolumeList(ctx, nil)
	if names(list) != "pre" {
		t.Fatalf("a failed attach left volumes: %s", names(list))
	}
	if err := f.svc.VolumeRemove(ctx, "pre", false); err != nil {
		t.Fatalf("a failed attach left a reference: %v", err)
	}
	// A nested mount of the same volume is refused, and undone too.
	loop := []MountPoint{{Type: mount.TypeVolume, Name: "v1", Destination: "/v"}, {Type: mount.TypeVolume, Name: "v1", Destination: "/v/sub"}}
	if err := f.svc.Attach(ctx, "c2", loop); err == nil || !strings.Contains(err.Error(), "which would loop") || !errdefs.InvalidArgument(err) {
		t.Fatalf("nested volume: %v", err)
	}
	if list, _ := f.svc.VolumeList(ctx, nil); len(list) != 0 {
		t.Fatalf("left: %s", names(list))
	}
}

func TestReferenceAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	mps := []MountPoint{{Type: mount.TypeVolume, Name: "db", Destination: "/db"}}
	if err := f.svc.Attach(ctx, "c1", mps); err != nil {
		t.Fatal(err)
	}
	f.svc = f.open(t)
	f.svc.Reference(ctx, "c1", append(mps, MountPoint{Type: mount.TypeVolume, Name: "gone", Destination: "/g"}), false)
	if err := f.svc.VolumeRemove(ctx, "db", false); err == nil || !errdefs.Conflict(err) {
		t.Fatalf("remove after restart: %v", err)
	}
	du, err := f.svc.DiskUsage(ctx)
	if err != nil || du.TotalCount != 1 || du.ActiveCount != 1 || du.Items[0].UsageData.RefCount != 1 {
		t.Fatalf("disk usage: %+v, %v", du, err)
	}
}

func TestInterruptedRemovalIsFinished(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	trash := filepath.Join(f.root, "volumes", ".trash-0123456789abcdef")
	if err := os.MkdirAll(filepath.Join(trash, "_data", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	if _, err := os.Stat(trash); !os.IsNotExist(err) {
		t.Fatalf("trash left after restart: %v", err)
	}
}

// TestLocalDriverMounts checks "mount at first use, unmount when unused"
// with a tmpfs volume and a bind volume, and that removing a bind volume
// never deletes the bound directory's content.
func TestLocalDriverMounts(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "precious"), []byte("x"), 0o644)
	for _, req := range []volumetypes.CreateRequest{
		{Name: "tmp1", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0750"}},
		{Name: "bind1", DriverOpts: map[string]string{"type": "none", "device": host, "o": "bind"}},
		{Name: "broken", DriverOpts: map[string]string{"type": "none", "device": "/no/such/dir", "o": "bind"}},
	} {
		if _, err := f.svc.VolumeCreate(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range []string{"tmp1", "bind1"} {
			f.svc.unmountData(&record{Name: n, Options: map[string]string{"type": "x"}})
		}
	})
	mounted := func(name string) bool { ok, _ := isMountPoint(f.svc.Path(name)); return ok }
	if mounted("tmp1") || mounted("bind1") {
		t.Fatal("mounted before first use")
	}
	p, err := f.svc.Mount(ctx, "tmp1", "c1", map[string]string{})
	if err != nil || !mounted("tmp1") {
		t.Fatalf("first use: %v", err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o750 {
		t.Fatalf("tmpfs options not applied: %v", fi.Mode())
	}
	if _, err := f.svc.Mount(ctx, "tmp1", "c2", map[string]string{}); err != nil {
		t.Fatal(err)
	}
	f.svc.Unmount(ctx, "tmp1", "c1")
	if !mounted("tmp1") {
		t.Fatal("unmounted while c2 still runs")
	}
	f.svc.Unmount(ctx, "tmp1", "c2")
	if mounted("tmp1") {
		t.Fatal("still mounted after the last user stopped")
	}
	if p, err := f.svc.Mount(ctx, "bind1", "c1", map[string]string{}); err != nil || !fileExists(filepath.Join(p, "precious")) {
		t.Fatalf("bind volume: %v", err)
	}
	// A restarted daemon finds the volume still mounted but unused:
	// removal unmounts first and leaves the host directory alone.
	f.svc = f.open(t)
	if err := f.svc.VolumeRemove(ctx, "bind1", false); err != nil {
		t.Fatal(err)
	}
	if !fileExists(filepath.Join(host, "precious")) {
		t.Fatal("removing a bind volume deleted the bound directory's content")
	}
	_, err = f.svc.Mount(ctx, "broken", "c1", map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "failed to mount local volume") || mounted("broken") {
		t.Fatalf("broken device: %v", err)
	}
	// The daemon's own use (cp) mounts and unmounts without events.
	if _, err := f.svc.Mount(ctx, "tmp1", "cp-1", nil); err != nil || !mounted("tmp1") {
		t.Fatalf("mount for cp: %v", err)
	}
	if err := f.svc.Unmount(ctx, "tmp1", "cp-1"); err != nil || mounted("tmp1") {
		t.Fatalf("unmount after cp: %v", err)
	}
	past, _, _ := f.events.Events(ctx, time.Unix(1, 0), time.Now(), map[string][]string{"volume": {"tmp1", "bind1"}})
	var got []string
	for _, m := range past {
		got = append(got, string(m.Action)+" "+m.Actor.ID+" "+m.Actor.Attributes["container"])
	}
	want := "create tmp1 ,create bind1 ,mount tmp1 c1,mount tmp1 c2,unmount tmp1 c1,unmount tmp1 c2,mount bind1 c1,destroy bind1 "
	if strings.Join(got, ",") != want {
		t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestDirSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1000), 0o644)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "b"), make([]byte, 24), 0o644)
	os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "d", "a-again"))
	if got := dirSize(dir); got != 1024 {
		t.Fatalf("dirSize = %d, want 1024 (hard link counted once)", got)
	}
	if got := dirSize(filepath.Join(dir, "missing")); got != -1 {
		t.Fatalf("dirSize of a missing dir = %d", got)
	}
}

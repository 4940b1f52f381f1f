package api_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"berth/api"
	"berth/volume"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	bolt "go.etcd.io/bbolt"
)

// volumeServer serves the real volume service, on a temporary store.
func volumeServer(t *testing.T, opts ...client.Opt) (*client.Client, *volume.Service, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "berth.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	vols, err := volume.New(context.Background(), volume.Options{DB: db, Root: filepath.Join(dir, "volumes")})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Options{Volumes: vols, Version: api.VersionInfo{Version: "0.1.0"}}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := client.New(append([]client.Opt{client.WithHost("unix://" + sock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, vols, sock
}

func TestVolumeRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, vols, _ := volumeServer(t, client.WithAPIVersionNegotiation())
	created, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "data", Labels: map[string]string{"tier": "db"}})
	if err != nil || created.Volume.Name != "data" || created.Volume.Driver != "local" || created.Volume.Scope != "local" ||
		!strings.HasSuffix(created.Volume.Mountpoint, "/volumes/data/_data") {
		t.Fatalf("create: %+v, %v", created, err)
	}
	anon, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{})
	if err != nil || len(anon.Volume.Name) != 64 {
		t.Fatalf("create anonymous: %+v, %v", anon, err)
	}
	if _, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "x", Driver: "flocker"}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("unknown driver: %v", err)
	}
	if _, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "bad/name"}); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("bad name: %v", err)
	}
	list, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", "tier=db")})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "data" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if _, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("colour", "red")}); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("list bad filter: %v", err)
	}
	insp, err := c.VolumeInspect(ctx, "data", client.VolumeInspectOptions{})
	if err != nil || insp.Volume.Labels["tier"] != "db" || !strings.Contains(string(insp.Raw), `"Options":null`) {
		t.Fatalf("inspect: %+v %s, %v", insp.Volume, insp.Raw, err)
	}
	if _, err := c.VolumeInspect(ctx, "nope", client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "get nope: no such volume") {
		t.Fatalf("inspect missing: %v", err)
	}
	if err := vols.Attach(ctx, "c1", []volume.MountPoint{{Type: mount.TypeVolume, Name: "data", Destination: "/d"}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.VolumeRemove(ctx, "data", client.VolumeRemoveOptions{Force: true})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "remove data: volume is in use - [c1]") {
		t.Fatalf("remove in use, even forced: %v", err)
	}
	if _, err := c.VolumeRemove(ctx, "nope", client.VolumeRemoveOptions{Force: true}); err != nil {
		t.Fatalf("remove -f missing: %v", err)
	}
	pruned, err := c.VolumePrune(ctx, client.VolumePruneOptions{})
	if err != nil || len(pruned.Report.VolumesDeleted) != 1 || pruned.Report.VolumesDeleted[0] != anon.Volume.Name {
		t.Fatalf("prune: %+v, %v", pruned, err)
	}
	if _, err := c.VolumeRemove(ctx, anon.Volume.Name, client.VolumeRemoveOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("pruned volume still there: %v", err)
	}
}

// TestVolumePruneBefore142 checks that older clients' prune takes named
// volumes too, as it did before API 1.42.
func TestVolumePruneBefore142(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, sock := volumeServer(t, client.WithAPIVersion("1.41"))
	for _, n := range []string{"named1", "named2"} {
		if _, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := c.VolumePrune(ctx, client.VolumePruneOptions{})
	if err != nil || strings.Join(rep.Report.VolumesDeleted, ",") != "named1,named2" {
		t.Fatalf("prune at 1.41: %+v, %v", rep, err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest(http.MethodPut, "http://berth/v1.51/volumes/named1?version=1", strings.NewReader("{}"))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("volume update outside a swarm: %d", resp.StatusCode)
	}
}

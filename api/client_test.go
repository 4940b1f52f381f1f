package api_test

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth/api"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// newClient serves the handler on a unix socket in a temp dir and returns a
// moby client that negotiates its API version against it, as the docker CLI
// does.
func newClient(t *testing.T) *client.Client {
	t.Helper()
	imgs, sys := fixture()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Options{Images: imgs, System: sys, Version: api.VersionInfo{Version: "0.1.0"}}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestMobyClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)

	ping, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil || ping.APIVersion != "1.51" || ping.OSType != "linux" || ping.BuilderVersion != "1" {
		t.Fatalf("Ping = %+v, %v", ping, err)
	}
	if v := c.ClientVersion(); v != "1.51" {
		t.Fatalf("negotiated %s, want 1.51", v)
	}
	ver, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil || ver.APIVersion != "1.51" || ver.MinAPIVersion != "1.24" || ver.Components[0].Name != "Engine" {
		t.Fatalf("ServerVersion = %+v, %v", ver, err)
	}
	list, err := c.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("dangling", "false")})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != busyboxID {
		t.Fatalf("ImageList = %+v, %v", list, err)
	}
	insp, err := c.ImageInspect(ctx, "127.0.0.1:5000/ns/busybox:latest")
	if err != nil || insp.ID != busyboxID || insp.Architecture != "amd64" {
		t.Fatalf("ImageInspect = %+v, %v", insp, err)
	}
	_, err = c.ImageInspect(ctx, "nope")
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: nope") {
		t.Fatalf("ImageInspect(nope) error = %v", err)
	}
	hist, err := c.ImageHistory(ctx, "busybox")
	if err != nil || len(hist.Items) != 1 {
		t.Fatalf("ImageHistory = %+v, %v", hist, err)
	}
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: "busybox", Target: "127.0.0.1:5000/other:v1"}); err != nil {
		t.Fatalf("ImageTag: %v", err)
	}
	_, err = c.ImageRemove(ctx, busyboxID, client.ImageRemoveOptions{})
	if !cerrdefs.IsConflict(err) {
		t.Fatalf("ImageRemove(id) error = %v, want conflict", err)
	}
	rm, err := c.ImageRemove(ctx, "127.0.0.1:5000/other:v1", client.ImageRemoveOptions{PruneChildren: true})
	if err != nil || len(rm.Items) != 1 || rm.Items[0].Untagged != "127.0.0.1:5000/other:v1" {
		t.Fatalf("ImageRemove = %+v, %v", rm, err)
	}
	testClientImportPrune(t, c)
}

func testClientImportPrune(t *testing.T, c *client.Client) {
	ctx := context.Background()
	rc, err := c.ImageImport(ctx, client.ImageImportSource{Source: strings.NewReader("tar"), SourceName: "-"}, "example/imp:v1",
		client.ImageImportOptions{Message: "m", Changes: []string{"CMD sh"}})
	if err != nil {
		t.Fatalf("ImageImport: %v", err)
	}
	body, err := io.ReadAll(rc)
	if err != nil || !strings.HasPrefix(string(body), `{"status":"sha256:`) {
		t.Fatalf("import stream %q, %v", body, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	du, err := c.DiskUsage(ctx, client.DiskUsageOptions{Images: true})
	if err != nil || du.Images.TotalCount != 3 || du.Images.TotalSize != 2_050_009 {
		t.Fatalf("DiskUsage = %+v, %v", du.Images, err)
	}
	pr, err := c.ImagePrune(ctx, client.ImagePruneOptions{Filters: make(client.Filters).Add("dangling", "true")})
	if err != nil || pr.Report.SpaceReclaimed != 6 {
		t.Fatalf("ImagePrune = %+v, %v", pr, err)
	}
	info, err := c.Info(ctx, client.InfoOptions{})
	if err != nil || info.Info.Images != 2 || info.Info.Driver != "overlay2" {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	list, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, s := range list.Items {
		tags = append(tags, s.RepoTags...)
	}
	slices.Sort(tags)
	if want := []string{"127.0.0.1:5000/ns/busybox:latest", "busybox:latest", "example/imp:v1"}; !slices.Equal(tags, want) {
		t.Fatalf("tags after all = %v, want %v", tags, want)
	}
}

func TestMobyClientTooOld(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	// Pinning an old version bypasses negotiation; the server must refuse it.
	old, err := client.New(client.WithHost(c.DaemonHost()), client.WithAPIVersion("1.23"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	_, err = old.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err == nil || !strings.Contains(err.Error(), "client version 1.23 is too old") {
		t.Fatalf("err = %v", err)
	}
}

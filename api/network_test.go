package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"berth/api"
	"berth/api/apitest"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

func networkServer(t *testing.T) (*client.Client, string) {
	t.Helper()
	nets := apitest.NewNetworks(time.Now, map[string]string{"web": strings.Repeat("ab", 32)})
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Options{Networks: nets, Version: api.VersionInfo{Version: "0.1.0"}}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, sock
}

func TestNetworkRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := networkServer(t)
	created, err := c.NetworkCreate(ctx, "app", client.NetworkCreateOptions{
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.9.0.0/24")}}},
		Labels: map[string]string{"tier": "web"},
	})
	if err != nil || len(created.ID) != 64 {
		t.Fatalf("create: %+v, %v", created, err)
	}
	_, err = c.NetworkCreate(ctx, "app", client.NetworkCreateOptions{})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "network with name app already exists") {
		t.Fatalf("duplicate create: %v", err)
	}
	_, err = c.NetworkCreate(ctx, "clash", client.NetworkCreateOptions{IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.9.0.0/16")}}}})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "Pool overlaps") {
		t.Fatalf("overlap: %v", err)
	}
	list, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", "tier=web")})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "app" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	all, _ := c.NetworkList(ctx, client.NetworkListOptions{})
	var names []string
	for _, n := range all.Items {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"app", "bridge", "host", "none"}) {
		t.Fatalf("list all: %v", names)
	}
	insp, err := c.NetworkInspect(ctx, created.ID[:6], client.NetworkInspectOptions{})
	if err != nil || insp.Network.Name != "app" || insp.Network.IPAM.Config[0].Subnet.String() != "10.9.0.0/24" {
		t.Fatalf("inspect: %+v, %v", insp.Network, err)
	}
	if _, err := c.NetworkInspect(ctx, "app", client.NetworkInspectOptions{Scope: "swarm"}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect with swarm scope: %v", err)
	}
	if _, err := c.NetworkInspect(ctx, "nope", client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "network nope not found") {
		t.Fatalf("inspect unknown: %v", err)
	}
	if _, err := c.NetworkConnect(ctx, "app", client.NetworkConnectOptions{Container: "web", EndpointConfig: &network.EndpointSettings{Aliases: []string{"w"}}}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := c.NetworkConnect(ctx, "app", client.NetworkConnectOptions{Container: "ghost"}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("connect unknown container: %v", err)
	}
	_, err = c.NetworkRemove(ctx, "app", client.NetworkRemoveOptions{})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "has active endpoints") {
		t.Fatalf("remove in use: %v", err)
	}
	if _, err := c.NetworkRemove(ctx, "bridge", client.NetworkRemoveOptions{}); !cerrdefs.IsPermissionDenied(err) {
		t.Fatalf("remove bridge: %v", err)
	}
	if _, err := c.NetworkDisconnect(ctx, "app", client.NetworkDisconnectOptions{Container: "web", Force: true}); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	pruned, err := c.NetworkPrune(ctx, client.NetworkPruneOptions{})
	if err != nil || !slices.Equal(pruned.Report.NetworksDeleted, []string{"app"}) {
		t.Fatalf("prune: %+v, %v", pruned, err)
	}
}

func TestNetworkRouteStatuses(t *testing.T) {
	t.Parallel()
	_, sock := networkServer(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	tests := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"POST", "/v1.51/networks/create", `{"Name":"n1"}`, http.StatusCreated, `"Id":`},
		{"POST", "/networks/create", ``, http.StatusBadRequest, "request body is empty"},
		{"POST", "/networks/create", `{`, http.StatusBadRequest, "invalid JSON"},
		{"GET", "/networks", ``, http.StatusOK, `"Name":"bridge"`},
		{"GET", "/networks/", ``, http.StatusOK, `"Name":"n1"`},
		{"GET", `/networks?filters={"colour":["red"]}`, ``, http.StatusBadRequest, "invalid filter 'colour'"},
		{"POST", "/networks/n1/connect", `{}`, http.StatusBadRequest, "container name or ID is required"},
		{"POST", "/networks/n1/connect", `{"Container":"web"}`, http.StatusOK, ""},
		{"POST", "/networks/n1/disconnect", `{"Container":"web"}`, http.StatusOK, ""},
		{"POST", "/networks/n1/disconnect", `{"Container":"web"}`, http.StatusConflict, "is not connected to network n1"},
		{"DELETE", "/networks/n1", ``, http.StatusNoContent, ""},
		{"DELETE", "/networks/n1", ``, http.StatusNotFound, "network n1 not found"},
		{"POST", "/networks/prune", ``, http.StatusOK, `{"NetworksDeleted":[]}`},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, "http://berth"+tt.path, strings.NewReader(tt.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(b.String(), tt.contains) {
			t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, resp.StatusCode, b.String(), tt.status, tt.contains)
		}
	}
}

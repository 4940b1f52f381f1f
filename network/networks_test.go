package network

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"berth/errdefs"
	"berth/network/internal/nstest"

	"github.com/moby/moby/api/types/network"
)

func TestNetworkCreateInspect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	id := e.createNet("app", "10.40.0.0/16", func(r *network.CreateRequest) {
		r.IPAM.Config[0].Gateway = netip.MustParseAddr("10.40.0.254")
		r.IPAM.Config[0].IPRange = netip.MustParsePrefix("10.40.5.0/24")
		r.Internal = true
		r.Labels = map[string]string{"tier": "app"}
		r.Options[optMTU] = "1400"
	})
	doc, err := e.svc.NetworkInspect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	want := network.IPAMConfig{Subnet: netip.MustParsePrefix("10.40.0.0/16"), IPRange: netip.MustParsePrefix("10.40.5.0/24"), Gateway: netip.MustParseAddr("10.40.0.254")}
	if doc.ID != id || doc.Driver != "bridge" || !doc.Internal || doc.Labels["tier"] != "app" || doc.Options[optMTU] != "1400" ||
		len(doc.IPAM.Config) != 1 || doc.IPAM.Config[0].Subnet != want.Subnet || doc.IPAM.Config[0].IPRange != want.IPRange || doc.IPAM.Config[0].Gateway != want.Gateway ||
		doc.IPAM.Driver != "default" || doc.Scope != "local" || !doc.EnableIPv4 || doc.Containers == nil {
		t.Fatalf("inspect = %+v", doc)
	}
	link, err := nstest.Handle(t, e.hostNS).LinkByName("br-app")
	if err != nil || link.Attrs().MTU != 1400 {
		t.Fatalf("bridge: %v %v", link, err)
	}
	// Without a subnet: the next free /16 of the pools.
	e.createNet("auto", "", nil)
	auto, _ := e.svc.NetworkInspect(ctx, "auto")
	if got := auto.IPAM.Config[0].Subnet.String(); got != "172.18.0.0/16" {
		t.Fatalf("auto subnet = %s", got)
	}
	// The default bridge name is br-<12 hex of the id>.
	resp, err := e.svc.NetworkCreate(ctx, network.CreateRequest{Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := e.svc.NetworkInspect(ctx, resp.ID[:7])
	if plain.IPAM.Config[0].Subnet.String() != "172.19.0.0/16" {
		t.Fatalf("plain subnet = %v", plain.IPAM.Config[0].Subnet)
	}
	if _, err := nstest.Handle(t, e.hostNS).LinkByName("br-" + resp.ID[:12]); err != nil {
		t.Fatalf("bridge of plain: %v", err)
	}
	// Networks survive a restart with their bridges.
	e.restart()
	if again, err := e.svc.NetworkInspect(ctx, "app"); err != nil || again.ID != id {
		t.Fatalf("after restart: %v %v", again.ID, err)
	}
}

func TestNetworkCreateErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createNet("taken", "10.50.0.0/24", nil)
	pfx := netip.MustParsePrefix
	sub := func(s string) *network.IPAM { return &network.IPAM{Config: []network.IPAMConfig{{Subnet: pfx(s)}}} }
	yes := true
	tests := []struct {
		name string
		req  network.CreateRequest
		want string
		kind error
	}{
		{"duplicate name", network.CreateRequest{Name: "taken"}, "network with name taken already exists", errdefs.ErrConflict},
		{"overlapping subnet", network.CreateRequest{Name: "x", IPAM: sub("10.50.0.128/25")}, "invalid pool request: Pool overlaps with other one on this address space", errdefs.ErrConflict},
		{"overlapping the default bridge", network.CreateRequest{Name: "x", IPAM: sub("172.16.0.0/12")}, "Pool overlaps", errdefs.ErrConflict},
		{"gateway outside", network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: pfx("10.60.0.0/24"), Gateway: netip.MustParseAddr("10.61.0.1")}}}}, "invalid gateway 10.61.0.1", errdefs.ErrInvalidArgument},
		{"range outside", network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: pfx("10.60.0.0/24"), IPRange: pfx("10.62.0.0/25")}}}}, "invalid ip-range", errdefs.ErrInvalidArgument},
		{"gateway without subnet", network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Gateway: netip.MustParseAddr("10.61.0.1")}}}}, "every ip-range or gateway must have a corresponding subnet", errdefs.ErrInvalidArgument},
		{"ipv6 subnet", network.CreateRequest{Name: "x", IPAM: sub("fd00::/64")}, "IPv6", errdefs.ErrNotImplemented},
		{"ipv6", network.CreateRequest{Name: "x", EnableIPv6: &yes}, "IPv6", errdefs.ErrNotImplemented},
		{"unknown driver", network.CreateRequest{Name: "x", Driver: "overlay"}, `plugin "overlay" not found`, errdefs.ErrNotFound},
		{"second host network", network.CreateRequest{Name: "x", Driver: "host"}, `only one instance of "host" network is allowed`, errdefs.ErrPermissionDenied},
		{"bad name", network.CreateRequest{Name: "a b"}, "invalid network name", errdefs.ErrInvalidArgument},
		{"empty name", network.CreateRequest{}, "network name must not be empty", errdefs.ErrInvalidArgument},
		{"bad mtu", network.CreateRequest{Name: "x", Options: map[string]string{optMTU: "big"}}, "invalid value \"big\" for option " + optMTU, errdefs.ErrInvalidArgument},
		{"bad masquerade", network.CreateRequest{Name: "x", Options: map[string]string{optMasquerade: "maybe"}}, "must be true or false", errdefs.ErrInvalidArgument},
		{"bridge name in use", network.CreateRequest{Name: "x", Options: map[string]string{optBridgeName: "br-taken"}}, "bridge name br-taken is already used by network taken", errdefs.ErrConflict},
		{"bridge name of a host interface", network.CreateRequest{Name: "x", Options: map[string]string{optBridgeName: "lo"}}, "interface lo already exists", errdefs.ErrConflict},
		{"bridge name too long", network.CreateRequest{Name: "x", Options: map[string]string{optBridgeName: "a-very-long-bridge-name"}}, "invalid bridge name", errdefs.ErrInvalidArgument},
		{"swarm scope", network.CreateRequest{Name: "x", Scope: "swarm"}, "scope", errdefs.ErrInvalidArgument},
		{"aux addresses", network.CreateRequest{Name: "x", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: pfx("10.63.0.0/24"), AuxAddress: map[string]netip.Addr{"a": netip.MustParseAddr("10.63.0.5")}}}}}, "aux-address", errdefs.ErrNotImplemented},
	}
	before := e.links()
	for _, tt := range tests {
		_, err := e.svc.NetworkCreate(context.Background(), tt.req)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.kind) {
			t.Errorf("%s: err = %v, want %q (%v)", tt.name, err, tt.want, tt.kind)
		}
	}
	if after := e.links(); !slices.Equal(before, after) {
		t.Errorf("failed creates changed the links: %v -> %v", before, after)
	}
	list, _ := e.svc.NetworkList(context.Background(), nil)
	if len(list) != 4 {
		t.Errorf("%d networks after failed creates, want 4", len(list))
	}
}

func names(list []network.Summary) []string {
	var out []string
	for _, n := range list {
		out = append(out, n.Name)
	}
	return out
}

func TestNetworkListRemovePrune(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.createNet("used", "10.70.1.0/24", func(r *network.CreateRequest) { r.Labels = map[string]string{"keep": "yes"} })
	idle := e.createNet("idle", "10.70.2.0/24", func(r *network.CreateRequest) { r.Labels = map[string]string{"tier": "web"} })
	e.createNet("idle2", "10.70.3.0/24", nil)
	e.container("c", onNet("used"))
	tests := []struct {
		filters map[string][]string
		want    []string
	}{
		{nil, []string{"bridge", "host", "idle", "idle2", "none", "used"}},
		{map[string][]string{"name": {"idle"}}, []string{"idle", "idle2"}},
		{map[string][]string{"type": {"builtin"}}, []string{"bridge", "host", "none"}},
		{map[string][]string{"type": {"custom"}, "label": {"tier=web"}}, []string{"idle"}},
		{map[string][]string{"label": {"keep"}}, []string{"used"}},
		{map[string][]string{"driver": {"null", "host"}}, []string{"host", "none"}},
		{map[string][]string{"dangling": {"true"}}, []string{"idle", "idle2"}},
		{map[string][]string{"id": {idle[:10]}}, []string{"idle"}},
		{map[string][]string{"scope": {"swarm"}}, nil},
	}
	for _, tt := range tests {
		list, err := e.svc.NetworkList(ctx, tt.filters)
		if err != nil || !slices.Equal(names(list), tt.want) {
			t.Errorf("list %v = %v, %v; want %v", tt.filters, names(list), err, tt.want)
		}
	}
	for _, bad := range []map[string][]string{{"colour": {"red"}}, {"type": {"odd"}}, {"dangling": {"perhaps"}}} {
		if _, err := e.svc.NetworkList(ctx, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("list %v: %v", bad, err)
		}
	}

	for _, tt := range []struct {
		ref, want string
		kind      error
	}{
		{"bridge", "bridge is a pre-defined network and cannot be removed", errdefs.ErrPermissionDenied},
		{"none", "none is a pre-defined network and cannot be removed", errdefs.ErrPermissionDenied},
		{"nope", "network nope not found", errdefs.ErrNotFound},
		{"used", `error while removing network: network used has active endpoints (name:"c" id:"` + ctrID("c")[:12] + `")`, errdefs.ErrConflict},
	} {
		if err := e.svc.NetworkRemove(ctx, tt.ref); err == nil || err.Error() != tt.want || !errors.Is(err, tt.kind) {
			t.Errorf("rm %s: %v, want %q", tt.ref, err, tt.want)
		}
	}

	// Prune: label filters and until; used and predefined networks stay.
	rep, err := e.svc.NetworksPrune(ctx, map[string][]string{"label!": {"tier"}, "until": {"1h"}})
	if err != nil || len(rep.NetworksDeleted) != 0 {
		t.Fatalf("prune until 1h ago: %v %v", rep, err)
	}
	rep, err = e.svc.NetworksPrune(ctx, map[string][]string{"label!": {"tier"}, "until": {time.Now().Add(time.Minute).Format(time.RFC3339)}})
	if err != nil || !slices.Equal(rep.NetworksDeleted, []string{"idle2"}) {
		t.Fatalf("prune label!=tier: %v %v", rep, err)
	}
	rep, err = e.svc.NetworksPrune(ctx, nil)
	if err != nil || !slices.Equal(rep.NetworksDeleted, []string{"idle"}) {
		t.Fatalf("prune: %v %v", rep, err)
	}
	if _, err := e.svc.NetworksPrune(ctx, map[string][]string{"until": {"yesterday"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("prune bad until: %v", err)
	}
	if err := e.svc.Teardown(ctx, ctrID("c")); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.NetworkRemove(ctx, "used"); err != nil {
		t.Fatal(err)
	}
	list, _ := e.svc.NetworkList(ctx, nil)
	if !slices.Equal(names(list), []string{"bridge", "host", "none"}) {
		t.Fatalf("left: %v", names(list))
	}
}

// TestInternalNetwork: containers reach each other but not the outside;
// no masquerade for the network.
func TestInternalNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	outside := nstest.NewNetns(t)
	nstest.Link(t, e.hostNS, outside, "10.66.0.1/24", "10.66.0.2/24")
	far := nstest.Listen(t, outside, "tcp4", "10.66.0.2:80")
	serveHTTP(far, "outside")
	e.createNet("sealed", "10.80.0.0/24", func(r *network.CreateRequest) { r.Internal = true })
	a := e.container("a", onNet("sealed"))
	b := e.container("b", onNet("sealed"))
	e.httpd(b, 80, "peer")
	mustGet(t, a.NetnsPath, "10.80.0.3:80", "peer")
	// Names of the network resolve; others are not forwarded out.
	if got, err := resolve(a.NetnsPath, "b"); err != nil || !slices.Equal(got, []string{"10.80.0.3"}) {
		t.Fatalf("resolve b on an internal network: %v %v", got, err)
	}
	if got, err := resolve(a.NetnsPath, "upstream.test"); err == nil {
		t.Fatalf("an internal network's container resolved an outside name: %v", got)
	}
	if !unreachable(a.NetnsPath, "10.66.0.2:80") {
		t.Fatal("a container on an internal network reached the outside")
	}
	if rc := readFile(t, a.ResolvConfPath); strings.Contains(rc, "forwards") || !strings.Contains(rc, "nameserver 127.0.0.11\n") {
		t.Fatalf("resolv.conf of an internal-only container:\n%s", rc)
	}
	if strings.Contains(e.ruleset(), `ip saddr 10.80.0.0/24 oifname != "br-sealed" masquerade`) {
		t.Fatal("internal network is masqueraded")
	}
	// A default-bridge container does reach the outside, masqueraded: the
	// far end sees the host's address.
	c := e.container("c", nil)
	seen := nstest.Listen(t, outside, "tcp4", "10.66.0.2:81")
	got := make(chan string, 1)
	go func() {
		conn, err := seen.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- conn.RemoteAddr().(*net.TCPAddr).IP.String()
		conn.Close()
	}()
	conn, err := nstest.Dialer(c.NetnsPath)(context.Background(), "tcp4", "10.66.0.2:81")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if src := <-got; src != "10.66.0.1" {
		t.Fatalf("outside saw %s, want the host's 10.66.0.1 (masquerade)", src)
	}
}

// TestInspectJSON pins the wire form of network and container inspect
// documents (ids and times normalised).
func TestInspectJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	id := e.createNet("app", "10.90.0.0/24", func(r *network.CreateRequest) { r.Labels = map[string]string{"tier": "web"} })
	sb := e.container("web", func(r *SandboxRequest) {
		onNet("app", "www")(r)
		publish(portsOf("80/tcp", "8080"))(r)
		r.ExposedPorts = network.PortSet{network.MustParsePort("443/tcp"): {}}
	})
	doc, err := e.svc.NetworkInspect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	ep := sb.Settings.Networks["app"]
	replacer := strings.NewReplacer(id, "<network id>", ep.EndpointID, "<endpoint id>", sb.Settings.SandboxID, "<sandbox id>",
		sb.NetnsPath, "<netns>", ctrID("web"), "<container id>", ctrID("web")[:12], "<short id>")
	norm := func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		s := replacer.Replace(string(b))
		return regexp.MustCompile(`"Created": "[^"]*"`).ReplaceAllString(s, `"Created": "<time>"`) + "\n"
	}
	checkGolden(t, "network-inspect.golden", norm(doc))
	checkGolden(t, "container-network-settings.golden", norm(sb.Settings))
}

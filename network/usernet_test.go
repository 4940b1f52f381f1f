package network

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"berth/errdefs"
	"berth/network/internal/nstest"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

func onNet(netName string, aliases ...string) func(*SandboxRequest) {
	return func(r *SandboxRequest) {
		r.NetworkMode = netName
		if len(aliases) > 0 {
			r.Endpoints = map[string]*network.EndpointSettings{netName: {Aliases: aliases}}
		}
	}
}

// TestUserNetworks covers name resolution by name and alias, isolation
// between networks, and connect/disconnect of a running container.
func TestUserNetworks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createNet("front", "10.10.1.0/24", nil)
	e.createNet("back", "10.10.2.0/24", nil)
	web := e.container("web", onNet("front"))
	db := e.container("db", onNet("front", "database", "Primary"))
	other := e.container("other", onNet("back"))
	for _, sb := range []*Sandbox{web, db, other} {
		e.httpd(sb, 80, "ok")
	}
	if ep := db.Settings.Networks["front"]; ep.IPAddress.String() != "10.10.1.3" || ep.Gateway.String() != "10.10.1.1" ||
		!slices.Equal(ep.Aliases, []string{"database", "Primary"}) || !slices.Equal(ep.DNSNames, []string{"db", ctrID("db")[:12], "database", "Primary"}) {
		t.Fatalf("db endpoint = %+v", ep)
	}

	tests := []struct {
		name string
		want []string
	}{
		{"db", []string{"10.10.1.3"}},
		{"DB", []string{"10.10.1.3"}},
		{"database", []string{"10.10.1.3"}},
		{"primary", []string{"10.10.1.3"}},
		{ctrID("db")[:12], []string{"10.10.1.3"}},
		{"db.front", []string{"10.10.1.3"}},
		{"web", []string{"10.10.1.2"}},
		// Forwarded to the host's resolver (a fake on the host's
		// loopback), reached from the host namespace.
		{"upstream.test", []string{"198.51.100.7"}},
	}
	for _, tt := range tests {
		got, err := resolve(web.NetnsPath, tt.name)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("resolve %s from web = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	// A container on another network is not visible, by name or address.
	if got, err := resolve(web.NetnsPath, "other"); err == nil {
		t.Errorf("web resolved other (on another network): %v", got)
	}
	mustGet(t, web.NetnsPath, "10.10.1.3:80", "ok")
	if !unreachable(web.NetnsPath, "10.10.2.2:80") {
		t.Error("web reached other across networks")
	}
	if !unreachable(other.NetnsPath, "10.10.1.2:80") {
		t.Error("other reached web across networks")
	}
	checkGolden(t, "resolv-user.golden", readFile(t, web.ResolvConfPath))

	// Connect other to front: it gets a second interface, resolves and
	// reaches front's containers, and they resolve it.
	if err := e.svc.Connect(context.Background(), ctrID("other"), "front", &network.EndpointSettings{Aliases: []string{"extra"}}); err != nil {
		t.Fatal(err)
	}
	sb, _ := e.svc.Sandbox(context.Background(), ctrID("other"))
	if ep := sb.Settings.Networks["front"]; ep == nil || ep.IPAddress.String() != "10.10.1.4" {
		t.Fatalf("after connect: %+v", sb.Settings.Networks)
	}
	mustGet(t, other.NetnsPath, "10.10.1.2:80", "ok")
	if got, err := resolve(web.NetnsPath, "extra"); err != nil || !slices.Equal(got, []string{"10.10.1.4"}) {
		t.Errorf("resolve connected alias: %v %v", got, err)
	}
	if got, err := resolve(other.NetnsPath, "web"); err != nil || !slices.Equal(got, []string{"10.10.1.2"}) {
		t.Errorf("connected container resolves web: %v %v", got, err)
	}
	if hosts := readFile(t, other.HostsPath); !strings.Contains(hosts, "10.10.2.2\t") || !strings.Contains(hosts, "10.10.1.4\t") {
		t.Errorf("hosts after connect:\n%s", hosts)
	}
	err := e.svc.Connect(context.Background(), ctrID("other"), "front", nil)
	if err == nil || !strings.Contains(err.Error(), "endpoint with name other already exists in network front") {
		t.Errorf("second connect: %v", err)
	}

	// Disconnect from its first network: the default route moves to front.
	if err := e.svc.Disconnect(context.Background(), ctrID("other"), "back", false); err != nil {
		t.Fatal(err)
	}
	e.createNet("third", "10.10.3.0/24", nil)
	outsider := e.container("outsider", onNet("third"))
	e.httpd(outsider, 80, "outsider")
	gw := nstest.Listen(t, e.hostNS, "tcp4", "10.10.1.1:8000")
	serveHTTP(gw, "host via front")
	mustGet(t, other.NetnsPath, "10.10.1.1:8000", "host via front")
	if err := e.svc.Disconnect(context.Background(), ctrID("other"), "back", false); err == nil || !strings.Contains(err.Error(), "is not connected to network back") {
		t.Errorf("disconnect again: %v", err)
	}
	if err := e.svc.Disconnect(context.Background(), ctrID("other"), "front", false); err != nil {
		t.Fatal(err)
	}
	if got, err := resolve(web.NetnsPath, "other"); err == nil {
		t.Errorf("web still resolves other after disconnect: %v", got)
	}
}

// TestDNSForwardFromContainer forwards to a non-loopback resolver, which is
// dialled from the container's namespace (here: a fake resolver on an
// address of the host namespace, reached through the gateway).
func TestDNSForwardFromContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nstest.AddDummy(t, e.hostNS, "dns0", "10.99.0.53/32")
	e.startUpstream("10.99.0.53:53", map[string]string{"far.test": "203.0.113.9"})
	e.createNet("n", "", nil)
	sb := e.container("c", func(r *SandboxRequest) {
		r.NetworkMode = "n"
		r.DNS = []netip.Addr{netip.MustParseAddr("10.99.0.53")}
		r.DNSSearch = []string{"corp.test"}
		r.DNSOptions = []string{"timeout:2"}
	})
	if got, err := resolve(sb.NetnsPath, "far.test"); err != nil || !slices.Equal(got, []string{"203.0.113.9"}) {
		t.Fatalf("forwarded lookup = %v, %v", got, err)
	}
	checkGolden(t, "resolv-user-dns.golden", readFile(t, sb.ResolvConfPath))
}

func TestEndpointErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createNet("fixed", "10.20.0.0/24", func(r *network.CreateRequest) { r.IPAM.Config[0].IPRange = netip.MustParsePrefix("10.20.0.128/25") })
	e.createNet("auto", "", nil)
	static := func(netName, ip string) func(*SandboxRequest) {
		return func(r *SandboxRequest) {
			r.NetworkMode = netName
			r.Endpoints = map[string]*network.EndpointSettings{netName: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(ip)}}}
		}
	}
	// Automatic addresses come from the ip-range, fixed ones from anywhere
	// in the subnet.
	a := e.container("a", onNet("fixed"))
	if got := a.Settings.Networks["fixed"].IPAddress.String(); got != "10.20.0.128" {
		t.Fatalf("ip-range allocation = %s", got)
	}
	b := e.container("b", static("fixed", "10.20.0.5"))
	if ep := b.Settings.Networks["fixed"]; ep.IPAddress.String() != "10.20.0.5" || ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address.String() != "10.20.0.5" {
		t.Fatalf("static endpoint = %+v", ep)
	}
	tests := []struct {
		name string
		mod  func(*SandboxRequest)
		want string
		kind error
	}{
		{"address in use", static("fixed", "10.20.0.5"), "Address already in use", errdefs.ErrConflict},
		{"outside the subnet", static("fixed", "10.21.0.5"), "no configured subnet or ip-range contain the IP address 10.21.0.5", errdefs.ErrInvalidArgument},
		{"broadcast", static("fixed", "10.20.0.255"), "no configured subnet or ip-range contain the IP address 10.20.0.255", errdefs.ErrInvalidArgument},
		{"gateway", static("fixed", "10.20.0.1"), "is the gateway", errdefs.ErrConflict},
		{"ipv6", static("fixed", "fd00::5"), "invalid IPv4 address", errdefs.ErrInvalidArgument},
		{"default bridge", static("bridge", "172.17.0.9"), "user specified IP address is supported on user defined networks only", errdefs.ErrInvalidArgument},
		{"no user subnet", static("auto", "172.18.0.9"), "user specified IP address is supported only when connecting to networks with user configured subnets", errdefs.ErrInvalidArgument},
		{"alias on default bridge", onNet("bridge", "x"), "network-scoped alias is supported only for containers in user defined networks", errdefs.ErrInvalidArgument},
		{"unknown network", onNet("nope"), "network nope not found", errdefs.ErrNotFound},
		{"bad add-host", func(r *SandboxRequest) { r.ExtraHosts = []string{"h:not-an-ip"} }, `invalid IP address in add-host: "not-an-ip"`, errdefs.ErrInvalidArgument},
	}
	before := e.links()
	for _, tt := range tests {
		_, err := e.setup("bad", tt.mod)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.kind) {
			t.Errorf("%s: err = %v, want %q (%v)", tt.name, err, tt.want, tt.kind)
		}
	}
	if after := e.links(); !slices.Equal(before, after) {
		t.Errorf("links changed by failed setups: %v -> %v", before, after)
	}
	if err := e.svc.Connect(context.Background(), ctrID("a"), "nope", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("connect to unknown network: %v", err)
	}
	if err := e.svc.Connect(context.Background(), ctrID("ghost"), "fixed", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("connect of a container without sandbox: %v", err)
	}
	// Ports are ignored with none and host networking, as Docker does.
	rules := e.ruleset()
	for _, mode := range []string{"none", "host"} {
		sb := e.container(mode, func(r *SandboxRequest) {
			r.NetworkMode = mode
			publish(map[string][]network.PortBinding{"80/tcp": {{HostPort: "8080"}}})(r)
		})
		if len(sb.Settings.Ports[network.MustParsePort("80/tcp")]) != 0 || e.ruleset() != rules {
			t.Errorf("ports published with --network %s: %v", mode, sb.Settings.Ports)
		}
	}
	if err := e.svc.Connect(context.Background(), ctrID("host"), "fixed", nil); err == nil || !strings.Contains(err.Error(), "host network") {
		t.Errorf("connect of a host-network container: %v", err)
	}
	// --add-host host-gateway is the default bridge's gateway.
	g := e.container("g", func(r *SandboxRequest) { r.ExtraHosts = []string{"host.docker.internal:host-gateway", "v6=::1"} })
	if hosts := readFile(t, g.HostsPath); !strings.Contains(hosts, "172.17.0.1\thost.docker.internal\n::1\tv6\n") {
		t.Errorf("hosts with host-gateway:\n%s", hosts)
	}
}

// TestDNSPortAndRestart: the embedded server leaves port 53 free for the
// container's own use, and answers again after a daemon restart.
func TestDNSPortAndRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createNet("n", "10.10.9.0/24", nil)
	a := e.container("a", onNet("n"))
	e.container("b", onNet("n"))
	own := nstest.ListenPacket(t, a.NetnsPath, "udp4", "0.0.0.0:53")
	ownTCP := nstest.Listen(t, a.NetnsPath, "tcp4", "0.0.0.0:53")
	_, _ = own, ownTCP
	for round := range 2 {
		if got, err := resolve(a.NetnsPath, "b"); err != nil || !slices.Equal(got, []string{"10.10.9.3"}) {
			t.Fatalf("round %d: resolve b = %v, %v", round, got, err)
		}
		e.restart()
	}
}

func TestLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := e.container("db", nil)
	web := e.container("web", func(r *SandboxRequest) { r.Links = []string{"/db:/web/database"} })
	if hosts := readFile(t, web.HostsPath); !strings.Contains(hosts, ipOf(db, "bridge")+"\tdatabase "+ctrID("db")[:12]+" db\n") {
		t.Fatalf("hosts with a legacy link:\n%s", hosts)
	}
	e.createNet("n", "10.10.7.0/24", nil)
	e.container("cache", onNet("n"))
	app := e.container("app", func(r *SandboxRequest) {
		r.NetworkMode = "n"
		r.Endpoints = map[string]*network.EndpointSettings{"n": {Links: []string{"cache:kv"}}}
	})
	other := e.container("other", onNet("n"))
	if got, err := resolve(app.NetnsPath, "kv"); err != nil || !slices.Equal(got, []string{"10.10.7.2"}) {
		t.Fatalf("app resolves its link alias: %v %v", got, err)
	}
	if got, err := resolve(other.NetnsPath, "kv"); err == nil {
		t.Fatalf("another container resolved app's link alias: %v", got)
	}
	if ep := app.Settings.Networks["n"]; !slices.Equal(ep.Links, []string{"cache:kv"}) {
		t.Fatalf("Links = %v", ep.Links)
	}
	for _, tt := range []struct {
		mod  func(*SandboxRequest)
		want string
	}{
		{func(r *SandboxRequest) { r.Links = []string{"ghost:g"} }, "could not get container for ghost"},
		{func(r *SandboxRequest) { r.Links = []string{"cache"} }, "Cannot link to /cache, as it does not belong to the default network"},
	} {
		if _, err := e.setup("bad", tt.mod); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("link error = %v, want %q", err, tt.want)
		}
	}
}

func TestMultipleNetworksAtCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createNet("front", "10.10.4.0/24", nil)
	e.createNet("back", "10.10.5.0/24", nil)
	sb := e.container("both", func(r *SandboxRequest) {
		r.NetworkMode = "front"
		r.Endpoints = map[string]*network.EndpointSettings{"front": {Aliases: []string{"f"}}, "back": {Aliases: []string{"b"}}}
	})
	if ipOf(sb, "front") != "10.10.4.2" || ipOf(sb, "back") != "10.10.5.2" {
		t.Fatalf("networks = %+v", sb.Settings.Networks)
	}
	h := nstest.Handle(t, sb.NetnsPath)
	for _, name := range []string{"eth0", "eth1"} {
		if _, err := h.LinkByName(name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	routes, _ := h.RouteList(nil, 2)
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool { return r.Gw.String() == "10.10.4.1" }) {
		t.Fatalf("default route not via front: %v", routes)
	}
	back := e.container("peer", onNet("back"))
	if got, err := resolve(back.NetnsPath, "b"); err != nil || !slices.Equal(got, []string{"10.10.5.2"}) {
		t.Fatalf("peer on back resolves b = %v %v", got, err)
	}
	if got, err := resolve(back.NetnsPath, "f"); err == nil {
		t.Fatalf("peer on back resolved front's alias: %v", got)
	}
}

// TestConnectSwitchesResolver: a default-bridge container that joins a
// user network gets the embedded DNS in its resolv.conf (as Docker
// rewrites it), and its own one back when it leaves.
func TestConnectSwitchesResolver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createNet("front", "10.10.7.0/24", nil)
	e.container("web", onNet("front"))
	plain := e.container("plain", func(r *SandboxRequest) { r.DNSSearch = []string{"kept.test"} })
	before := readFile(t, plain.ResolvConfPath)
	if strings.Contains(before, "127.0.0.11") {
		t.Fatalf("default bridge resolv.conf:\n%s", before)
	}
	ctx := context.Background()
	if err := e.svc.Connect(ctx, ctrID("plain"), "front", nil); err != nil {
		t.Fatal(err)
	}
	if rc := readFile(t, plain.ResolvConfPath); !strings.Contains(rc, "nameserver 127.0.0.11\n") || !strings.Contains(rc, "search kept.test\n") {
		t.Fatalf("resolv.conf after connect:\n%s", rc)
	}
	if got, err := resolve(plain.NetnsPath, "web"); err != nil || !slices.Equal(got, []string{"10.10.7.2"}) {
		t.Fatalf("resolve web after connect: %v %v", got, err)
	}
	if err := e.svc.Disconnect(ctx, ctrID("plain"), "front", false); err != nil {
		t.Fatal(err)
	}
	if rc := readFile(t, plain.ResolvConfPath); rc != before {
		t.Fatalf("resolv.conf after disconnect:\n%s\nwant:\n%s", rc, before)
	}
}

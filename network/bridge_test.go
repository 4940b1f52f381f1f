package network

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"berth/network/internal/nstest"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

func TestDefaultBridge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	br, err := e.svc.NetworkInspect(context.Background(), "bridge")
	if err != nil {
		t.Fatal(err)
	}
	if got := br.IPAM.Config[0]; got.Subnet.String() != "172.17.0.0/16" || got.Gateway.String() != "172.17.0.1" {
		t.Fatalf("default bridge IPAM = %+v", got)
	}
	if br.Options[optBridgeName] != "berth0" || br.Driver != "bridge" || br.Scope != "local" {
		t.Fatalf("default bridge = %+v", br.Network)
	}
	link, err := nstest.Handle(t, e.hostNS).LinkByName("berth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := nstest.Handle(t, e.hostNS).AddrList(link, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "172.17.0.1/16" {
		t.Fatalf("berth0 addresses = %v", addrs)
	}

	sb := e.container("web", nil)
	ep := sb.Settings.Networks["bridge"]
	if ep == nil {
		t.Fatalf("no bridge endpoint: %+v", sb.Settings.Networks)
	}
	if ep.IPAddress.String() != "172.17.0.2" || ep.Gateway.String() != "172.17.0.1" || ep.IPPrefixLen != 16 ||
		ep.MacAddress.String() != "02:42:ac:11:00:02" || ep.NetworkID != br.ID || len(ep.EndpointID) != 64 || ep.Aliases != nil {
		t.Fatalf("endpoint = %+v", ep)
	}
	if !strings.HasPrefix(sb.NetnsPath, e.opts.ExecRoot+"/netns/") || sb.Settings.SandboxKey != sb.NetnsPath || len(sb.Settings.SandboxID) != 64 {
		t.Fatalf("sandbox = %+v", sb)
	}
	// From the host: the container's address; from the container: the
	// gateway.
	e.httpd(sb, 80, "hello from web")
	mustGet(t, e.hostNS, "172.17.0.2:80", "hello from web")
	gw := nstest.Listen(t, e.hostNS, "tcp4", "172.17.0.1:7777")
	serveHTTP(gw, "gateway")
	mustGet(t, sb.NetnsPath, "172.17.0.1:7777", "gateway")

	other := e.container("other", nil)
	e.httpd(other, 80, "hello from other")
	if got := other.Settings.Networks["bridge"].IPAddress.String(); got != "172.17.0.3" {
		t.Fatalf("second container got %s", got)
	}
	mustGet(t, sb.NetnsPath, "172.17.0.3:80", "hello from other")

	// Inspect of the network lists both containers.
	br, _ = e.svc.NetworkInspect(context.Background(), br.ID[:5])
	if len(br.Containers) != 2 || br.Containers[ctrID("web")].IPv4Address.String() != "172.17.0.2/16" || br.Containers[ctrID("web")].Name != "web" {
		t.Fatalf("containers = %+v", br.Containers)
	}

	checkGolden(t, "hosts-bridge.golden", readFile(t, sb.HostsPath))
	checkGolden(t, "resolv-bridge.golden", readFile(t, sb.ResolvConfPath))
	if got := readFile(t, sb.HostnamePath); got != ctrID("web")[:12]+"\n" {
		t.Fatalf("hostname file = %q", got)
	}
}

func TestBridgeSubnetChoice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mod    func(*Options)
		busy   string
		subnet string
		gw     string
	}{
		{name: "bip", mod: func(o *Options) { o.Bip = "10.200.3.1/24" }, subnet: "10.200.3.0/24", gw: "10.200.3.1"},
		{name: "bip not first address", mod: func(o *Options) { o.Bip = "10.200.3.254/24" }, subnet: "10.200.3.0/24", gw: "10.200.3.254"},
		{name: "172.17 in use on the host", busy: "172.17.8.1/24", subnet: "172.18.0.0/16", gw: "172.18.0.1"},
		{name: "all of 172.16/12 in use", busy: "172.16.0.1/12", subnet: "192.168.0.0/20", gw: "192.168.0.1"},
		{name: "address pools", mod: func(o *Options) { o.DefaultAddressPools = []Pool{{Base: "10.123.0.0/16", Size: 24}} }, subnet: "10.123.0.0/24", gw: "10.123.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mods := []func(*Options){}
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			var ns string
			if tt.busy != "" {
				// The route must exist before the service starts: make
				// the host namespace first and hand it over.
				ns = nstest.NewNetns(t)
				nstest.AddDummy(t, ns, "lan0", tt.busy)
				mods = append(mods, func(o *Options) { o.HostNetns = ns })
			}
			e := newEnvIn(t, ns, mods...)
			br, err := e.svc.NetworkInspect(context.Background(), "bridge")
			if err != nil {
				t.Fatal(err)
			}
			if got := br.IPAM.Config[0]; got.Subnet.String() != tt.subnet || got.Gateway.String() != tt.gw {
				t.Fatalf("IPAM = %v/%v, want %s/%s", got.Subnet, got.Gateway, tt.subnet, tt.gw)
			}
			sb := e.container("c", nil)
			if ep := sb.Settings.Networks["bridge"]; !netip.MustParsePrefix(tt.subnet).Contains(ep.IPAddress) || ep.IPAddress.String() == tt.gw {
				t.Fatalf("container address %s", ep.IPAddress)
			}
		})
	}
}

// newEnvIn is newEnv whose host namespace may be given (ns != "").
func newEnvIn(t *testing.T, ns string, mod ...func(*Options)) *env {
	if ns == "" {
		return newEnv(t, mod...)
	}
	return newEnv(t, append([]func(*Options){func(o *Options) { o.HostNetns = ns }}, mod...)...)
}

func TestBipChangeMovesIdleBridge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.opts.Bip = "10.201.0.1/16"
	e.restart()
	br, _ := e.svc.NetworkInspect(context.Background(), "bridge")
	if br.IPAM.Config[0].Subnet.String() != "10.201.0.0/16" {
		t.Fatalf("after --bip: %v", br.IPAM.Config[0].Subnet)
	}
	link, err := nstest.Handle(t, e.hostNS).LinkByName("berth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := nstest.Handle(t, e.hostNS).AddrList(link, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.201.0.1/16" {
		t.Fatalf("berth0 addresses after bip change = %v", addrs)
	}
}

func TestHostNoneAndContainerModes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	host := e.container("h", func(r *SandboxRequest) {
		r.NetworkMode = "host"
		r.ExtraHosts = []string{"extra:10.1.2.3"}
		r.PortBindings = network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}
	})
	if host.NetnsPath != "" || host.Settings.Networks["host"] == nil || len(host.Settings.Ports) != 1 {
		t.Fatalf("host sandbox = %+v %+v", host, host.Settings)
	}
	if got := readFile(t, host.HostsPath); got != "127.0.0.1\tlocalhost\n10.0.0.9\thost-entry\n10.1.2.3\textra\n" {
		t.Fatalf("host-mode hosts = %q", got)
	}
	if got := readFile(t, host.ResolvConfPath); got != readFile(t, e.opts.ResolvConf) {
		t.Fatalf("host-mode resolv.conf = %q", got)
	}
	if strings.Contains(e.ruleset(), "8080") {
		t.Fatal("host-mode ports must not be published")
	}

	none := e.container("n", func(r *SandboxRequest) { r.NetworkMode = "none" })
	if none.NetnsPath == "" || none.Settings.Networks["none"] == nil || none.Settings.Networks["none"].IPAddress.IsValid() {
		t.Fatalf("none sandbox = %+v", none.Settings.Networks)
	}
	ls, err := nstest.Handle(t, none.NetnsPath).LinkList()
	if err != nil || len(ls) != 1 || ls[0].Attrs().Name != "lo" || ls[0].Attrs().Flags&1 == 0 {
		t.Fatalf("none links = %v, %v", ls, err)
	}

	web := e.container("web", nil)
	side := e.container("side", func(r *SandboxRequest) { r.NetworkMode = "container:web"; r.JoinContainerID = ctrID("web") })
	if side.NetnsPath != web.NetnsPath || side.HostsPath != web.HostsPath || len(side.Settings.Networks) != 0 {
		t.Fatalf("joined sandbox = %+v", side)
	}
	// Tearing the joiner down leaves the owner alone.
	if err := e.svc.Teardown(context.Background(), ctrID("side")); err != nil {
		t.Fatal(err)
	}
	e.httpd(web, 80, "still here")
	mustGet(t, e.hostNS, "172.17.0.2:80", "still here")

	_, err = e.setup("orphan", func(r *SandboxRequest) { r.JoinContainerID = ctrID("nobody") })
	if err == nil || !strings.Contains(err.Error(), "cannot join network namespace of a non running container") {
		t.Fatalf("join unknown: %v", err)
	}
}

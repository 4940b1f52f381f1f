package network

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth/network/bridge"
	"berth/network/internal/nstest"
	"berth/network/nsenter"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

func ipOf(sb *Sandbox, netName string) string {
	return sb.Settings.Networks[netName].IPAddress.String()
}

// TestIPAMPersistence: lowest free address first, reuse after a container
// goes, never one address twice, and all of it across daemon restarts.
func TestIPAMPersistence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.container("a", nil), e.container("b", nil)
	if ipOf(a, "bridge") != "172.17.0.2" || ipOf(b, "bridge") != "172.17.0.3" {
		t.Fatalf("a=%s b=%s", ipOf(a, "bridge"), ipOf(b, "bridge"))
	}
	if err := e.svc.Teardown(ctx, ctrID("a")); err != nil {
		t.Fatal(err)
	}
	// Teardown is idempotent.
	if err := e.svc.Teardown(ctx, ctrID("a")); err != nil {
		t.Fatal(err)
	}
	c := e.container("c", nil)
	if ipOf(c, "bridge") != "172.17.0.2" {
		t.Fatalf("c got %s, want the freed 172.17.0.2", ipOf(c, "bridge"))
	}
	e.restart()
	// b and c live on: their addresses are still taken after the restart.
	d := e.container("d", nil)
	if ipOf(d, "bridge") != "172.17.0.4" {
		t.Fatalf("d got %s after restart, want 172.17.0.4", ipOf(d, "bridge"))
	}
	sb, err := e.svc.Sandbox(ctx, ctrID("b"))
	if err != nil || ipOf(sb, "bridge") != "172.17.0.3" || sb.NetnsPath != b.NetnsPath {
		t.Fatalf("b after restart: %+v, %v", sb, err)
	}
	// Setup of a container that has a sandbox returns it unchanged.
	again := e.container("b", nil)
	if ipOf(again, "bridge") != "172.17.0.3" || again.Settings.SandboxID != b.Settings.SandboxID {
		t.Fatalf("second Setup of b: %+v", again.Settings.Networks["bridge"])
	}
	// The default bridge keeps its subnet and ID across restarts.
	n1, _ := e.svc.NetworkInspect(ctx, "bridge")
	e.restart()
	n2, _ := e.svc.NetworkInspect(ctx, "bridge")
	if n1.ID != n2.ID || n1.IPAM.Config[0].Subnet != n2.IPAM.Config[0].Subnet {
		t.Fatalf("bridge changed across restart: %v %v", n1.Network, n2.Network)
	}
	seen := map[string]string{}
	for _, name := range []string{"b", "c", "d"} {
		sb, _ := e.svc.Sandbox(ctx, ctrID(name))
		ip := ipOf(sb, "bridge")
		if other, dup := seen[ip]; dup {
			t.Fatalf("%s and %s share %s", name, other, ip)
		}
		seen[ip] = name
	}
}

// TestCleanup: teardown removes veths, rules and namespaces; Close with no
// containers removes the table; Close with containers keeps everything
// (live restore).
func TestCleanup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	baseline := e.links()
	e.createNet("n", "10.30.0.0/24", nil)
	withNet := append(slices.Clone(baseline), "br-n")
	web := e.container("web", publish(portsOf("80/tcp", "8080")))
	e.container("db", onNet("n"))
	if !strings.Contains(e.ruleset(), "dnat to 172.17.0.2:80") {
		t.Fatalf("no DNAT rule:\n%s", e.ruleset())
	}
	if !strings.Contains(e.ruleset(), `ip saddr 172.17.0.0/16 oifname != "berth0" masquerade`) {
		t.Fatalf("no masquerade rule:\n%s", e.ruleset())
	}
	// Live restore: a daemon stop keeps the container's networking.
	e.restart()
	e.httpd(web, 80, "alive")
	mustGet(t, e.hostNS, "127.0.0.1:8080", "alive")

	for _, id := range []string{"web", "db"} {
		if err := e.svc.Teardown(ctx, ctrID(id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.links(); !slices.Equal(got, withNet) {
		t.Fatalf("links after teardown %v, want %v", got, withNet)
	}
	if strings.Contains(e.ruleset(), "dnat to") {
		t.Fatalf("DNAT rule left after teardown:\n%s", e.ruleset())
	}
	if entries, _ := os.ReadDir(filepath.Join(e.opts.ExecRoot, "netns")); len(entries) != 0 {
		t.Fatalf("netns files left: %v", entries)
	}
	if err := e.svc.NetworkRemove(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if got := e.links(); !slices.Equal(got, baseline) {
		t.Fatalf("links after network rm %v, want %v", got, baseline)
	}
	// With no containers left, a daemon stop leaves no rules behind.
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	e.closed = true
	if rs := e.ruleset(); rs != "" {
		t.Fatalf("rules left after Close:\n%s", rs)
	}
}

// TestCrashRecovery: a daemon start removes what a crash left behind.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	keep := e.container("keep", nil)
	e.container("dead", publish(portsOf("80/tcp", "9000")))
	gone := e.container("gone", nil)
	// Leftovers of a crash: a veth on our bridge that no sandbox records,
	// a namespace mount nobody owns, and a sandbox whose namespace vanished
	// (as after a reboot).
	h := nstest.Handle(t, e.hostNS)
	br, _ := h.LinkByName("berth0")
	stray := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vethdead0", MasterIndex: br.Attrs().Index}, PeerName: "vethdead1"}
	if err := h.LinkAdd(stray); err != nil {
		t.Fatal(err)
	}
	strayNS := filepath.Join(e.opts.ExecRoot, "netns", "0123456789ab")
	if err := nsenter.Create(strayNS); err != nil {
		t.Fatal(err)
	}
	goneVeth := e.svc.sandboxes[ctrID("gone")].Endpoints[0].HostVeth
	if err := bridge.Detach(h, goneVeth); err != nil {
		t.Fatal(err)
	}
	if err := nsenter.Remove(gone.NetnsPath); err != nil {
		t.Fatal(err)
	}
	// The crash: the service is dropped without Close.
	e.svc.closeHandles()
	e.svc = e.open()

	links := strings.Join(e.links(), ",")
	if strings.Contains(links, "vethdead") {
		t.Fatalf("stray veth survived: %s", links)
	}
	if nsenter.Mounted(strayNS) {
		t.Fatal("stray netns survived")
	}
	if _, err := e.svc.Sandbox(ctx, ctrID("gone")); err == nil {
		t.Fatal("sandbox with a vanished namespace survived")
	}
	// The container service reports which containers still run.
	if err := e.svc.Restore(ctx, []string{ctrID("keep")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Sandbox(ctx, ctrID("dead")); err == nil {
		t.Fatal("sandbox of a dead container survived Restore")
	}
	if strings.Contains(e.ruleset(), "9000") {
		t.Fatalf("rule of a dead container survived:\n%s", e.ruleset())
	}
	// Their addresses are free again; keep's is not.
	n := e.container("new", nil)
	if ipOf(n, "bridge") != "172.17.0.3" {
		t.Fatalf("new container got %s, want 172.17.0.3", ipOf(n, "bridge"))
	}
	e.httpd(keep, 80, "kept")
	mustGet(t, e.hostNS, "172.17.0.2:80", "kept")
}

// TestServiceRulesetGolden pins the table the service generates for a
// default-bridge container with published ports and a user network.
func TestServiceRulesetGolden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createNet("n", "10.30.0.0/24", nil)
	e.container("web", func(r *SandboxRequest) {
		publish(map[string][]network.PortBinding{
			"80/tcp":  {{HostPort: "8080"}, {HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8081"}},
			"53/udp":  {{HostPort: "5353"}},
			"443/tcp": {},
		})(r)
	})
	e.container("db", onNet("n"))
	checkGolden(t, "service-ruleset.golden", e.ruleset())
}

package bridge

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"berth/network/internal/nstest"

	"github.com/vishvananda/netlink"
)

func TestEnsure(t *testing.T) {
	t.Parallel()
	ns := nstest.NewNetns(t)
	h := nstest.Handle(t, ns)
	b := Bridge{Name: "brt0", Address: netip.MustParsePrefix("10.44.0.1/24"), MTU: 1400}
	for range 2 { // idempotent
		link, err := Ensure(h, b)
		if err != nil {
			t.Fatal(err)
		}
		if link.Attrs().MTU != 1400 || link.Attrs().HardwareAddr.String() != "02:42:0a:2c:00:01" || link.Attrs().Flags&net.FlagUp == 0 {
			t.Fatalf("bridge attrs = %+v", link.Attrs())
		}
		addrs, _ := h.AddrList(link, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.44.0.1/24" {
			t.Fatalf("addresses = %v", addrs)
		}
	}
	// A changed address replaces the old one.
	b.Address = netip.MustParsePrefix("10.45.0.1/16")
	link, err := Ensure(h, b)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := h.AddrList(link, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.45.0.1/16" {
		t.Fatalf("addresses after change = %v", addrs)
	}
	// A name taken by another kind of link is an error, not a takeover.
	nstest.AddDummy(t, ns, "notbr", "10.46.0.1/24")
	if l, _ := h.LinkByName("notbr"); l.Type() != "bridge" {
		if _, err := Ensure(h, Bridge{Name: "notbr", Address: netip.MustParsePrefix("10.47.0.1/24")}); err == nil || !strings.Contains(err.Error(), "not a bridge") {
			t.Fatalf("Ensure over a %s: %v", l.Type(), err)
		}
	}
	if err := Delete(h, "brt0"); err != nil {
		t.Fatal(err)
	}
	if err := Delete(h, "brt0"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestAttachDetach(t *testing.T) {
	t.Parallel()
	host := nstest.NewNetns(t)
	ctr := nstest.NewNetns(t)
	hh, ch := nstest.Handle(t, host), nstest.Handle(t, ctr)
	if _, err := Ensure(hh, Bridge{Name: "brt1", Address: netip.MustParsePrefix("10.48.0.1/24")}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(ctr)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := Veth{HostName: "vethtest1", PeerName: "eth0", Bridge: "brt1", MAC: net.HardwareAddr{2, 0x42, 10, 48, 0, 2},
		Address: netip.MustParsePrefix("10.48.0.2/24"), Gateway: netip.MustParseAddr("10.48.0.1")}
	if err := Attach(hh, ch, int(f.Fd()), v); err != nil {
		t.Fatal(err)
	}
	ports, err := Ports(hh, "brt1")
	if err != nil || !slices.Equal(ports, []string{"vethtest1"}) {
		t.Fatalf("Ports = %v, %v", ports, err)
	}
	eth0, err := ch.LinkByName("eth0")
	if err != nil || eth0.Attrs().HardwareAddr.String() != "02:42:0a:30:00:02" {
		t.Fatalf("eth0 = %v, %v", eth0, err)
	}
	routes, _ := ch.RouteList(eth0, netlink.FAMILY_V4)
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.48.0.1"
	}) {
		t.Fatalf("no default route: %v", routes)
	}
	// A second attach with the same host name fails and leaves nothing
	// new behind.
	if err := Attach(hh, ch, int(f.Fd()), v); err == nil {
		t.Fatal("duplicate Attach succeeded")
	}
	if err := Detach(hh, "vethtest1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.LinkByName("eth0"); err == nil {
		t.Fatal("peer survived Detach")
	}
	if err := Detach(hh, "vethtest1"); err != nil {
		t.Fatalf("second Detach: %v", err)
	}
	// Attaching to a missing bridge fails before creating anything.
	v.Bridge = "nobridge"
	if err := Attach(hh, ch, int(f.Fd()), v); err == nil {
		t.Fatal("Attach to a missing bridge succeeded")
	}
	if ports, _ := Ports(hh, "nobridge"); ports != nil {
		t.Fatalf("Ports of a missing bridge = %v", ports)
	}
}

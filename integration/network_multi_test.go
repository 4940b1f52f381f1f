package integration

import (
	"net/netip"
	"strings"
	"testing"
)

// TestRunOnSeveralNetworks: repeated --network and its advanced form
// (name=,alias=,ip=) join a container to two user networks at creation,
// from the berth CLI and the stock docker CLI alike; the alias resolves
// on its network only, the --ip is honoured on the first.
func TestRunOnSeveralNetworks(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	s1, s2 := testSubnet(), testSubnet()
	d.createNetwork("--subnet", s1.String(), "front")
	d.createNetwork("--subnet", s2.String(), "back")
	gw1, gw2 := nth(s1, 1), nth(s2, 1)
	d.must("run", "-d", "--name", "peer-front", "--network", "front", "--dns", gw1.String(), "busybox", "sleep", "1000")
	d.must("run", "-d", "--name", "peer-back", "--network", "back", "--dns", gw2.String(), "busybox", "sleep", "1000")

	for i, cli := range []struct {
		name string
		run  func(args ...string) result
	}{{"berth", d.berth}, {"docker", d.docker}} {
		name, alias, ip := "multi-"+cli.name, "db-"+cli.name, nth(s1, 10+i)
		r := cli.run("run", "-d", "--name", name, "--ip", ip.String(), "--network", "front",
			"--network", "name=back,alias="+alias, "busybox", "sleep", "1000")
		if r.Code != 0 {
			t.Fatalf("%s run on two networks: %s", cli.name, r)
		}
		if got := d.inspect("{{.HostConfig.NetworkMode}}", name); got != "front" {
			t.Errorf("%s: NetworkMode %q", cli.name, got)
		}
		if got := d.ipOn(name, "front"); got != ip.String() {
			t.Errorf("%s: address on front %q, want %s", cli.name, got, ip)
		}
		backIP := d.ipOn(name, "back")
		if a, err := netip.ParseAddr(backIP); err != nil || !s2.Contains(a) {
			t.Fatalf("%s: address on back %q, want one in %s", cli.name, backIP, s2)
		}
		if out := d.must("exec", "peer-back", "nslookup", alias); !strings.Contains(out, "Address: "+backIP+"\n") {
			t.Errorf("%s: alias %s from back:\n%s", cli.name, alias, out)
		}
		if r := d.berth("exec", "peer-front", "nslookup", alias); r.Code == 0 && strings.Contains(r.Stdout, backIP) {
			t.Errorf("%s: alias of back resolves on front:\n%s", cli.name, r.Stdout)
		}
		d.must("exec", "peer-front", "ping", "-c1", "-W2", ip.String())
		d.must("exec", "peer-back", "ping", "-c1", "-W2", backIP)
	}
	for _, args := range [][]string{
		{"--network", "front", "--network", "front"},
		{"--network", "bridge", "--network", "front"},
		{"--network", "name=front,alias=a", "--network-alias", "b"},
	} {
		before := d.must("ps", "-aq")
		for _, cli := range []struct {
			name string
			run  func(args ...string) result
		}{{"berth", d.berth}, {"docker", d.docker}} {
			if r := cli.run(append(append([]string{"create"}, args...), "busybox")...); r.Code == 0 {
				t.Errorf("%s create %v succeeded", cli.name, args)
			}
		}
		if after := d.must("ps", "-aq"); after != before {
			t.Errorf("refused %v created a container: %q -> %q", args, before, after)
		}
	}
}

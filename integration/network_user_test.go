package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestUserNetworks: create (--subnet, --gateway, --ip-range, --internal,
// -o), ls, inspect, the embedded DNS (names and aliases), isolation
// between networks, connect/disconnect, rm and prune.
func TestUserNetworks(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	s1, s2, s3 := testSubnet(), testSubnet(), testSubnet()
	br1 := fmt.Sprintf("bu%d-%d", os.Getpid()%10000, netSeq.Add(1))
	gw1, gw2, gw3 := nth(s1, 254), nth(s2, 1), nth(s3, 1)
	id1 := d.createNetwork("--subnet", s1.String(), "--gateway", gw1.String(), "--ip-range", nth(s1, 128).String()+"/25",
		"-o", "com.docker.network.bridge.name="+br1, "--label", "team=blue", "front")
	d.createNetwork("--subnet", s2.String(), "back")
	d.createNetwork("--subnet", s3.String(), "--internal", "sealed")

	var doc []struct {
		Name, Id, Driver, Scope string
		Internal                bool
		IPAM                    struct {
			Config []struct{ Subnet, IPRange, Gateway string }
		}
		Options, Labels map[string]string
		Containers      map[string]struct{ Name, IPv4Address, MacAddress string }
	}
	if err := json.Unmarshal([]byte(d.must("network", "inspect", "front")), &doc); err != nil {
		t.Fatal(err)
	}
	if n := doc[0]; len(doc) != 1 || n.Id != id1 || n.Driver != "bridge" || n.Scope != "local" || n.Internal || len(n.IPAM.Config) != 1 ||
		n.IPAM.Config[0].Subnet != s1.String() || n.IPAM.Config[0].Gateway != gw1.String() || n.IPAM.Config[0].IPRange != nth(s1, 128).String()+"/25" ||
		n.Labels["team"] != "blue" || n.Options["com.docker.network.bridge.name"] != br1 {
		t.Fatalf("network inspect front: %+v", doc)
	}
	if out, err := os.ReadFile("/sys/class/net/" + br1 + "/bridge/bridge_id"); err != nil {
		t.Fatalf("bridge %s from -o: %v %s", br1, err, out)
	}
	if got := d.must("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Internal}}"); got != "back bridge false\nbridge bridge false\nfront bridge false\nhost host false\nnone null false\nsealed bridge true\n" {
		t.Fatalf("network ls:\n%s", got)
	}
	if got := d.must("network", "ls", "-q", "--filter", "label=team=blue"); got != id1[:12]+"\n" {
		t.Fatalf("network ls --filter label: %q", got)
	}

	// Names and aliases resolve through the embedded DNS; addresses come
	// from the ip-range unless --ip asks for one.
	d.httpd("web", "hello-web", "--network", "front", "--network-alias", "www", "--dns", gw1.String())
	d.must("run", "-d", "--name", "cli", "--network", "front", "--ip", nth(s1, 5).String(), "--dns", gw1.String(), "busybox", "sleep", "1000")
	webIP := d.ipOn("web", "front")
	if webIP != nth(s1, 128).String() || d.ipOn("cli", "front") != nth(s1, 5).String() {
		t.Fatalf("addresses: web %s, cli %s", webIP, d.ipOn("cli", "front"))
	}
	if got := d.inspect(`{{json .NetworkSettings.Networks.front.Aliases}} {{json .NetworkSettings.Networks.front.DNSNames}}`, "web"); got != fmt.Sprintf(`["www"] ["web","%s","www"]`, d.inspect("{{.Id}}", "web")[:12]) {
		t.Fatalf("aliases and DNS names: %s", got)
	}
	for _, name := range []string{"web", "www", "web.front"} {
		if out := d.must("exec", "cli", "nslookup", name); !strings.Contains(out, "Address: "+webIP+"\n") {
			t.Errorf("nslookup %s:\n%s", name, out)
		}
	}
	if got := d.must("exec", "cli", "wget", "-qO-", "http://www/"); got != "hello-web\n" {
		t.Fatalf("wget by alias: %q", got)
	}
	d.must("exec", "cli", "ping", "-c1", "-W2", "web")
	d.must("exec", "cli", "ping", "-c1", "-W2", gw1.String())
	if rc := d.must("exec", "cli", "cat", "/etc/resolv.conf"); !strings.Contains(rc, "nameserver 127.0.0.11\n") || !strings.Contains(rc, gw1.String()+":53") {
		t.Fatalf("resolv.conf on a user network:\n%s", rc)
	}
	if hosts := d.must("exec", "cli", "cat", "/etc/hosts"); !strings.HasSuffix(hosts, nth(s1, 5).String()+"\t"+d.inspect("{{.Id}}", "cli")[:12]+" cli\n") {
		t.Fatalf("/etc/hosts on a user network:\n%s", hosts)
	}

	// The embedded DNS comes back with a restarted daemon.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d.start()
	if out := d.must("exec", "cli", "nslookup", "www"); !strings.Contains(out, "Address: "+webIP+"\n") {
		t.Errorf("nslookup www after a daemon restart:\n%s", out)
	}

	// Isolation: another network neither resolves nor reaches them.
	d.must("run", "-d", "--name", "out", "--network", "back", "--dns", gw2.String(), "busybox", "sleep", "1000")
	if r := d.berth("exec", "out", "nslookup", "web"); r.Code == 0 || strings.Contains(r.Stdout, webIP) {
		t.Fatalf("web resolved from another network: %s", r)
	}
	if r := d.berth("exec", "out", "ping", "-c1", "-W1", webIP); r.Code == 0 {
		t.Fatalf("another network reached web: %s", r)
	}
	if r := d.berth("run", "--rm", "busybox", "ping", "-c1", "-W1", webIP); r.Code == 0 {
		t.Fatalf("the default bridge reached web: %s", r)
	}

	// connect brings web onto back (with an alias), disconnect takes it off.
	d.must("network", "connect", "--alias", "api", "back", "web")
	backIP := d.ipOn("web", "back")
	if out := d.must("exec", "out", "nslookup", "api"); !strings.Contains(out, "Address: "+backIP+"\n") {
		t.Fatalf("alias from connect:\n%s", out)
	}
	if got := d.must("exec", "out", "wget", "-qO-", "http://web/"); got != "hello-web\n" {
		t.Fatalf("wget after connect: %q", got)
	}
	if hosts := d.must("exec", "web", "cat", "/etc/hosts"); !strings.Contains(hosts, backIP+"\t") {
		t.Fatalf("/etc/hosts after connect:\n%s", hosts)
	}
	if r := d.berth("network", "rm", "back"); r.Code == 0 || !strings.Contains(r.Stderr, "error while removing network: network back has active endpoints") {
		t.Fatalf("rm of a network in use: %s", r)
	}
	d.must("network", "disconnect", "back", "web")
	if r := d.berth("exec", "out", "ping", "-c1", "-W1", backIP); r.Code == 0 {
		t.Fatalf("web still on back after disconnect: %s", r)
	}
	if got := d.inspect("{{len .NetworkSettings.Networks}}", "web"); got != "1" {
		t.Fatalf("networks after disconnect: %s", got)
	}
	if r := d.berth("network", "disconnect", "back", "web"); r.Code == 0 || !strings.Contains(r.Stderr, "is not connected to network back") {
		t.Fatalf("second disconnect: %s", r)
	}

	// An internal network: neighbours, but no way out.
	d.httpd("in1", "hello-in1", "--network", "sealed", "--dns", gw3.String())
	r := d.berth("run", "--rm", "--network", "sealed", "--dns", gw3.String(), "busybox", "sh", "-c",
		"wget -qO- http://in1/; ip route; ping -c1 -W1 "+gw1.String()+" >/dev/null 2>&1 && echo escaped; true")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "hello-in1\n") || strings.Contains(r.Stdout, "default") || strings.Contains(r.Stdout, "escaped") {
		t.Fatalf("internal network: %s", r)
	}

	// A stopped container's connect is kept for its next start.
	d.must("stop", "-t", "0", "out")
	d.must("network", "connect", "front", "out")
	d.must("start", "out")
	if ip := d.ipOn("out", "front"); ip == "" || d.ipOn("out", "back") == "" {
		t.Fatalf("connect of a stopped container: front %q back %q", ip, d.ipOn("out", "back"))
	}

	d.must("rm", "-f", "web", "cli", "out", "in1")
	if got := d.must("network", "prune", "-f", "--filter", "label=team=blue"); got != "Deleted Networks:\nfront\n\n" {
		t.Fatalf("prune --filter: %q", got)
	}
	if got := d.must("network", "rm", "back", "sealed"); got != "back\nsealed\n" {
		t.Fatalf("network rm: %q", got)
	}
	if _, err := os.Stat("/sys/class/net/" + br1); err == nil {
		t.Fatalf("bridge %s left after prune", br1)
	}
	if got := d.must("network", "ls", "-q"); strings.Count(got, "\n") != 3 {
		t.Fatalf("networks left: %q", got)
	}
}

// TestNetworkBadInput: precise errors, and nothing half configured.
func TestNetworkBadInput(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	s1 := testSubnet()
	d.createNetwork("--subnet", s1.String(), "taken")
	subnet, _ := d.bridgeNet()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--subnet", s1.String(), "again"}, "invalid pool request: Pool overlaps with other one on this address space"},
		{[]string{"--subnet", nth(s1, 0).String() + "/25", "inside"}, "invalid pool request: Pool overlaps with other one on this address space"},
		{[]string{"--subnet", subnet.String(), "ondefault"}, "invalid pool request: Pool overlaps with other one on this address space"},
		{[]string{"taken"}, "network with name taken already exists"},
		{[]string{"--subnet", "10.1.2.0/24", "--gateway", "10.9.9.1", "gwout"}, "no matching subnet for gateway 10.9.9.1"},
		{[]string{"--subnet", "10.1.2.0/33", "badmask"}, "invalid CIDR address: 10.1.2.0/33"},
		{[]string{"--subnet", "10.1.2.0/24", "--ip-range", "10.1.3.0/25", "rangeout"}, "no matching subnet for range 10.1.3.0/25"},
		{[]string{"--driver", "overlay", "ov"}, "plugin \"overlay\" not found"},
		{[]string{"-o", "com.docker.network.bridge.name=" + d.bridge, "samebridge"}, "already"},
		{[]string{"bad/name"}, "invalid network name"},
	} {
		nets := d.must("network", "ls", "-q")
		r := d.berth(append([]string{"network", "create"}, tc.args...)...)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.err) {
			t.Errorf("network create %v: want %q, got %s", tc.args, tc.err, r)
		}
		if after := d.must("network", "ls", "-q"); after != nets {
			t.Errorf("network create %v left a network:\n%s", tc.args, after)
		}

	}
	d.must("run", "-d", "--name", "held", "--network", "taken", "--ip", nth(s1, 9).String(), "--dns", nth(s1, 1).String(), "busybox", "sleep", "1000")
	before := d.hostState(t)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--network", "nosuch"}, "network nosuch not found"},
		{[]string{"--network", "taken", "--ip", nth(s1, 9).String()}, "Address already in use: " + nth(s1, 9).String()},
		{[]string{"--network", "taken", "--ip", "10.1.2.3"}, "no configured subnet or ip-range contain the IP address 10.1.2.3"},
		{[]string{"--network", "taken", "--ip", "10.1.2.300"}, "invalid IPv4 address: 10.1.2.300"},
		{[]string{"--network", "taken", "--ip", nth(s1, 1).String()}, "is the gateway"},
		{[]string{"-p", "99999:80"}, "invalid"},
		{[]string{"-p", "300.1.1.1:80:80"}, "invalid"},
	} {
		r := d.berth(append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")...)
		if r.Code != 125 || !strings.Contains(r.Stderr, tc.err) {
			t.Errorf("run %v: want %q, got %s", tc.args, tc.err, r)
		}
		if after := d.hostState(t); after != before {
			t.Errorf("run %v left kernel state: %+v -> %+v", tc.args, before, after)
		}
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"network", "rm", "taken"}, `network taken has active endpoints (name:"held"`},
		{[]string{"network", "rm", "nosuch"}, "network nosuch not found"},
		{[]string{"network", "rm", "bridge"}, "bridge is a pre-defined network and cannot be removed"},
		{[]string{"network", "connect", "nosuch", "held"}, "network nosuch not found"},
		{[]string{"network", "connect", "taken", "nosuch"}, "No such container: nosuch"},
		{[]string{"network", "connect", "host", "held"}, "host network"},
		{[]string{"network", "inspect", "nosuch"}, "network nosuch not found"},
	} {
		if r := d.berth(tc.args...); r.Code == 0 || !strings.Contains(r.Stderr, tc.err) {
			t.Errorf("%v: want %q, got %s", tc.args, tc.err, r)
		}
	}
	if got := d.must("ps", "-a", "--format", "{{.Names}}"); got != "held\n" {
		t.Fatalf("failed runs left containers: %q", got)
	}
}

// TestUserNetworkOptions: the bridge driver options berth acts on.
func TestUserNetworkOptions(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	s := testSubnet()
	d.createNetwork("--subnet", s.String(), "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
		"-o", "com.docker.network.bridge.enable_ip_masquerade=false", "-o", "com.docker.network.driver.mtu=1400", "tuned")
	other := hostAddr(t)
	hp := freePort(t, "tcp")
	d.httpd("lo1", "hello-lo1", "--network", "tuned", "--dns", nth(s, 1).String(), "-p", fmt.Sprintf("%d:80", hp))
	if got := d.must("port", "lo1"); got != fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", hp) {
		t.Fatalf("port with host_binding_ipv4: %q", got)
	}
	if got := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", hp)); got != "hello-lo1\n" {
		t.Fatalf("GET 127.0.0.1:%d: %q", hp, got)
	}
	if !refused(fmt.Sprintf("%s:%d", other, hp)) {
		t.Fatalf("a port bound to 127.0.0.1 by the network's option answers on %s", other)
	}
	if got := d.must("exec", "lo1", "cat", "/sys/class/net/eth0/mtu"); got != "1400\n" {
		t.Fatalf("mtu: %q", got)
	}
	if rules := d.ruleset(); strings.Contains(rules, fmt.Sprintf("ip saddr %s oifname != ", s)) {
		t.Fatalf("masquerade of a network created with enable_ip_masquerade=false:\n%s", rules)
	}
}

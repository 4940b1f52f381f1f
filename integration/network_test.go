package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Network tests send traffic only to loopback and to the bridges,
// containers and extra host addresses they create. Containers on user
// networks get --dns <their gateway>, where nothing listens, so that a
// name the embedded DNS does not know is never forwarded off the machine.

// netSeq numbers the subnets and addresses of this test process.
var netSeq atomic.Int32

// testSubnet is a /24 no other test process uses at the same time (it is
// derived from the PID), for --subnet.
func testSubnet() netip.Prefix {
	n := int(netSeq.Add(1))
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 180+os.Getpid()%60, n%256))
}

// hostAddr puts one more IPv4 address on the host, on a bridge of the
// test's own, and returns it: published ports must answer on every host
// address, not just 127.0.0.1.
func hostAddr(t *testing.T) netip.Addr {
	t.Helper()
	n := int(netSeq.Add(1))
	name := fmt.Sprintf("bx%d-%d", os.Getpid()%10000, n)
	addr := netip.MustParseAddr(fmt.Sprintf("10.179.%d.%d", os.Getpid()%250, n%250+1))
	for _, args := range [][]string{
		{"link", "add", name, "type", "bridge"},
		{"addr", "add", addr.String() + "/32", "dev", name},
		{"link", "set", name, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "link", "del", name).Run()
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	return addr
}

// bridgeNet is the subnet and gateway of the daemon's default bridge.
func (d *daemon) bridgeNet() (netip.Prefix, netip.Addr) {
	p := netip.MustParsePrefix(d.bip)
	return p.Masked(), p.Addr()
}

// nth is the n-th address of a subnet (1 is usually the gateway).
func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// mac is Docker's MAC for an address: 02:42 and the address's bytes.
func mac(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func (d *daemon) inspect(format, name string) string {
	d.t.Helper()
	return strings.TrimSpace(d.must("inspect", "-f", format, name))
}

func (d *daemon) ipOf(name string) string {
	d.t.Helper()
	return d.inspect("{{.NetworkSettings.IPAddress}}", name)
}

// ipOn is a container's address on a named network.
func (d *daemon) ipOn(name, network string) string {
	d.t.Helper()
	return d.inspect(`{{with index .NetworkSettings.Networks "`+network+`"}}{{.IPAddress}}{{end}}`, name)
}

// httpd runs a busybox httpd named name whose index page is body; extra
// are more run flags.
func (d *daemon) httpd(name, body string, extra ...string) {
	d.t.Helper()
	args := append([]string{"run", "-d", "--name", name}, extra...)
	d.must(append(args, "busybox", "sh", "-c", "mkdir -p /www && echo "+body+" > /www/index.html && exec httpd -f -p 80 -h /www")...)
}

// createNetwork runs `network create` and removes the network, and in any
// case its bridge, when the test ends (before the daemon stops).
func (d *daemon) createNetwork(args ...string) string {
	d.t.Helper()
	id := strings.TrimSpace(d.must(append([]string{"network", "create"}, args...)...))
	br := strings.TrimSpace(d.must("network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, id))
	if br == "" {
		br = "br-" + id[:12]
	}
	d.t.Cleanup(func() {
		if d.cmd != nil {
			d.removeContainers()
			d.berth("network", "rm", id)
		}
		exec.Command("ip", "link", "del", br).Run()
	})
	return id
}

// hostState is what the daemon has made in the kernel: veths on its bridge,
// namespaces, and DNAT rules in its table.
type hostState struct {
	veths, netns, dnat int
}

func (d *daemon) hostState(t *testing.T) hostState {
	t.Helper()
	out, _ := exec.Command("ip", "-o", "link", "show", "master", d.bridge).Output()
	entries, _ := os.ReadDir(d.ExecRoot + "/netns")
	return hostState{veths: strings.Count(string(out), "veth"), netns: len(entries), dnat: strings.Count(d.ruleset(), "dnat to")}
}

// ruleset is the daemon's nftables table, "" when there is none.
func (d *daemon) ruleset() string {
	out, err := exec.Command("nft", "list", "table", "ip", "berth-"+d.bridge).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// hostResolvers are the nameservers a default-bridge container gets: the
// host's minus loopback ones, or Docker's fallback.
func hostResolvers(t *testing.T) []string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				out = append(out, f[1])
			}
		}
	}
	if len(out) == 0 {
		out = []string{"8.8.8.8", "8.8.4.4"}
	}
	return out
}

// TestNetworkDefaultBridge: addresses, inspect, reachability from the host
// and between containers, /etc files, and IPAM that reuses the lowest free
// address and keeps addresses across a daemon restart.
func TestNetworkDefaultBridge(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	subnet, gw := d.bridgeNet()
	d.httpd("w1", "hello-w1")
	id2 := strings.TrimSpace(d.must("run", "-d", "--name", "w2", "busybox", "sleep", "1000"))
	ip1, ip2 := nth(subnet, 2), nth(subnet, 3)

	// The wire document, as docker clients of every version read it (the
	// berth CLI's own types no longer carry the deprecated top-level
	// fields).
	var doc struct {
		NetworkSettings struct {
			IPAddress, Gateway, MacAddress, EndpointID, SandboxKey string
			IPPrefixLen                                            int
			Networks                                               map[string]struct {
				IPAddress, Gateway, MacAddress, NetworkID, EndpointID string
				IPPrefixLen                                           int
				Aliases                                               []string
			}
		}
	}
	resp, err := d.get("/v1.51/containers/w1/json")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ns := doc.NetworkSettings
	bridgeID := strings.TrimSpace(d.must("network", "inspect", "-f", "{{.Id}}", "bridge"))
	ep := ns.Networks["bridge"]
	if ns.IPAddress != ip1.String() || ns.Gateway != gw.String() || ns.IPPrefixLen != 24 || ns.MacAddress != mac(ip1) ||
		len(ns.Networks) != 1 || ep.IPAddress != ns.IPAddress || ep.Gateway != ns.Gateway || ep.MacAddress != ns.MacAddress ||
		ep.IPPrefixLen != 24 || ep.NetworkID != bridgeID || ep.EndpointID == "" || ep.EndpointID != ns.EndpointID || ep.Aliases != nil ||
		ns.SandboxKey != d.ExecRoot+"/netns/"+d.inspect("{{.Id}}", "w1")[:12] {
		t.Fatalf("NetworkSettings of w1 (want %s via %s):\n%+v", ip1, gw, ns)
	}
	if got := d.ipOf("w2"); got != ip2.String() {
		t.Fatalf("w2 got %s, want %s", got, ip2)
	}

	// The host reaches the container on its address; containers reach
	// each other and the gateway.
	if got := fetch(t, "http://"+ip1.String()+"/"); got != "hello-w1\n" {
		t.Fatalf("host -> w1: %q", got)
	}
	if got := d.must("exec", "w2", "wget", "-qO-", "http://"+ip1.String()+"/"); got != "hello-w1\n" {
		t.Fatalf("w2 -> w1: %q", got)
	}
	d.must("exec", "w2", "ping", "-c1", "-W2", gw.String())

	// /etc files: own name and address, hostname, the host's resolvers.
	short := id2[:12]
	if hosts := d.must("exec", "w2", "cat", "/etc/hosts"); !strings.HasPrefix(hosts, "127.0.0.1\tlocalhost\n") || !strings.HasSuffix(hosts, ip2.String()+"\t"+short+" w2\n") {
		t.Fatalf("/etc/hosts:\n%s", hosts)
	}
	if got := d.must("exec", "w2", "cat", "/etc/hostname"); got != short+"\n" {
		t.Fatalf("/etc/hostname: %q", got)
	}
	var servers []string
	for _, line := range strings.Split(d.must("exec", "w2", "cat", "/etc/resolv.conf"), "\n") {
		if f, ok := strings.CutPrefix(line, "nameserver "); ok {
			servers = append(servers, f)
		}
	}
	if want := hostResolvers(t); !slices.Equal(servers, want) {
		t.Fatalf("resolv.conf nameservers %v, want %v", servers, want)
	}

	// The lowest free address is reused; an address is never handed out
	// twice, also to containers started at once.
	d.must("rm", "-f", "w1")
	d.httpd("w3", "hello-w3")
	if got := d.ipOf("w3"); got != ip1.String() {
		t.Fatalf("w3 got %s, want w1's freed %s", got, ip1)
	}
	ips := map[string]bool{ip1.String(): true, ip2.String(): true}
	var wg sync.WaitGroup
	out := make([]string, 3)
	for i := range out {
		wg.Go(func() {
			b, _ := exec.Command(berthBin, "-H", d.Host, "run", "-d", "busybox", "sleep", "1000").Output()
			out[i] = strings.TrimSpace(string(b))
		})
	}
	wg.Wait()
	for _, id := range out {
		ip := d.ipOf(id)
		if ips[ip] || !subnet.Contains(netip.MustParseAddr(ip)) {
			t.Fatalf("concurrent run got %s; taken: %v", ip, ips)
		}
		ips[ip] = true
	}

	// A daemon restart changes no address (the containers keep running).
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	d.start()
	if got := d.ipOf("w2") + " " + d.ipOf("w3"); got != ip2.String()+" "+ip1.String() {
		t.Fatalf("after restart: w2 w3 = %s", got)
	}
	if got := fetch(t, "http://"+ip1.String()+"/"); got != "hello-w3\n" {
		t.Fatalf("host -> w3 after restart: %q", got)
	}
	d.must("run", "-d", "--name", "w4", "busybox", "sleep", "1000")
	if got := d.ipOf("w4"); ips[got] {
		t.Fatalf("w4 got %s, which is taken", got)
	}
}

// TestNetworkModes: none, host, container:<name>, and the flags that shape
// /etc/hosts, /etc/hostname and /etc/resolv.conf.
func TestNetworkModes(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if got := d.must("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net"); got != "lo\n" {
		t.Fatalf("--network none: interfaces %q", got)
	}
	hostname, _ := os.Hostname()
	if got := d.must("run", "--rm", "--network", "host", "busybox", "sh", "-c", "hostname; cat /etc/hostname; test -d /sys/class/net/"+d.bridge+" && echo sees-the-bridge"); got != hostname+"\n"+hostname+"\nsees-the-bridge\n" {
		t.Fatalf("--network host: %q", got)
	}
	id := strings.TrimSpace(d.must("run", "-d", "--name", "owner", "busybox", "sleep", "1000"))
	ip := d.ipOf("owner")
	got := d.must("run", "--rm", "--network", "container:owner", "busybox", "sh", "-c", "hostname; ip -o -4 addr show eth0; tail -1 /etc/hosts")
	if !strings.HasPrefix(got, id[:12]+"\n") || !strings.Contains(got, "inet "+ip+"/24") || !strings.HasSuffix(got, ip+"\t"+id[:12]+" owner\n") {
		t.Fatalf("--network container:owner:\n%s", got)
	}
	if r := d.berth("run", "--rm", "--network", "container:nosuch", "busybox", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "No such container: nosuch") {
		t.Fatalf("container:nosuch: %s", r)
	}

	got = d.must("run", "--rm", "--name", "named", "--hostname", "box", "--domainname", "example.test",
		"--add-host", "db.test:10.1.2.3", "--add-host", "gw.test=host-gateway",
		"--dns", "10.9.9.9", "--dns-search", "one.test", "--dns-search", "two.test", "--dns-option", "ndots:2",
		"busybox", "sh", "-c", "hostname; echo ---; cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf")
	parts := strings.Split(got, "---\n")
	_, gw := d.bridgeNet()
	if len(parts) != 4 || parts[0] != "box\n" || parts[1] != "box\n" ||
		!strings.Contains(parts[2], "10.1.2.3\tdb.test\n") || !strings.Contains(parts[2], gw.String()+"\tgw.test\n") ||
		!strings.Contains(parts[2], "\tbox.example.test box named\n") ||
		!strings.Contains(parts[3], "nameserver 10.9.9.9\nsearch one.test two.test\noptions ndots:2\n") {
		t.Fatalf("hostname, hosts and resolv.conf:\n%s", got)
	}
	if got := d.must("run", "--rm", "--mac-address", "02:11:22:33:44:55", "busybox", "cat", "/sys/class/net/eth0/address"); got != "02:11:22:33:44:55\n" {
		t.Fatalf("--mac-address: %q", got)
	}
	// Refused at create, as Docker refuses them: no container is left and
	// nothing is configured.
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--network-alias", "x"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--ip", nth(netip.MustParsePrefix(d.bip), 50).String()}, "user specified IP address is supported on user defined networks only"},
		{[]string{"--network", "nosuch"}, "network nosuch not found"},
		{[]string{"--network", "container:owner", "-p", "80:80"}, "conflicting options: port publishing and the container type network mode"},
		{[]string{"--network", "container:owner", "--hostname", "x"}, "conflicting options: hostname and the network mode"},
		{[]string{"--network", "container:owner", "--dns", "10.9.9.9"}, "conflicting options: dns and the network mode"},
		{[]string{"--network", "container:owner", "--add-host", "a:10.1.1.1"}, "conflicting options: custom host-to-IP mapping and the network mode"},
		{[]string{"--network", "host", "--mac-address", "02:11:22:33:44:55"}, "conflicting options: mac-address and the network mode"},
		{[]string{"--mac-address", "01:11:22:33:44:55"}, "invalid MAC address 01:11:22:33:44:55"},
		{[]string{"--add-host", "nocolon"}, `bad format for add-host: "nocolon"`},
		{[]string{"--dns", "not-an-ip"}, "IP address is not correctly formatted: not-an-ip"},
	} {
		before := d.hostState(t)
		r := d.berth(append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")...)
		if r.Code != 125 || !strings.Contains(r.Stderr, tc.err) || strings.Contains(r.Stderr, "Error waiting for container") {
			t.Errorf("run %v: want 125 and %q, got %s", tc.args, tc.err, r)
		}
		if after := d.hostState(t); after != before {
			t.Errorf("run %v left kernel state: %+v -> %+v", tc.args, before, after)
		}
	}
	// Published ports are ignored with --network none and host, as Docker
	// ignores them.
	rules := d.ruleset()
	for _, mode := range []string{"none", "host"} {
		if got := d.must("run", "--rm", "--network", mode, "-p", "80:80", "busybox", "echo", "ok"); got != "ok\n" || d.ruleset() != rules {
			t.Errorf("-p with --network %s: %q, rules %s", mode, got, d.ruleset())
		}
	}
	if got := d.must("ps", "-aq"); strings.TrimSpace(got) != id[:12] {
		t.Fatalf("failed runs left containers: %q", got)
	}
}

// freePort is a TCP or UDP port nothing on the host uses right now.
func freePort(t *testing.T, proto string) int {
	t.Helper()
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"berth/testutil"
)

// TestDockerCLINetworking runs the networking flows with the stock docker
// CLI against a berth daemon, and compares both CLIs' output where it is
// deterministic.
func TestDockerCLINetworking(t *testing.T) {
	t.Parallel()
	dockerCLI(t)
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r := d.dockerIn(f, "import", "-c", `CMD ["httpd","-f","-p","80","-h","/etc"]`, "-c", "EXPOSE 80", "-", "web:latest"); r.Code != 0 {
		t.Fatalf("docker import: %s", r)
	}
	s := testSubnet()
	gw := nth(s, 1)
	if r := d.docker("network", "create", "--subnet", s.String(), "--label", "by=docker", "dnet"); r.Code != 0 {
		t.Fatalf("docker network create: %s", r)
	}
	id := strings.TrimSpace(d.must("network", "inspect", "-f", "{{.Id}}", "dnet"))
	t.Cleanup(func() { d.removeContainers(); d.berth("network", "rm", "dnet") })
	t.Cleanup(func() { runCmd(t, nil, nil, "ip", "link", "del", "br-"+id[:12]) })

	hp := freePort(t, "tcp")
	other := hostAddr(t)
	mustDocker := func(args ...string) string {
		t.Helper()
		r := d.docker(args...)
		if r.Code != 0 {
			t.Fatalf("docker %v: %s", args, r)
		}
		return r.Stdout
	}
	mustDocker("run", "-d", "--name", "dweb", "--network", "dnet", "--network-alias", "site", "--dns", gw.String(), "-p", fmt.Sprintf("%d:80", hp), "-P", "web")
	host := d.inspect("{{.Id}}", "dweb")[:12] + "\n"
	for _, addr := range []string{"127.0.0.1", other.String()} {
		if got := fetch(t, fmt.Sprintf("http://%s:%d/hostname", addr, hp)); got != host {
			t.Errorf("published port on %s: %q", addr, got)
		}
	}
	ip := strings.TrimSpace(mustDocker("inspect", "-f", "{{.NetworkSettings.Networks.dnet.IPAddress}}", "dweb"))
	if got := fetch(t, "http://"+ip+"/hostname"); got != host {
		t.Fatalf("GET %s: %q", ip, got)
	}
	if got := mustDocker("run", "--rm", "--network", "dnet", "--dns", gw.String(), "busybox", "wget", "-qO-", "http://site/hostname"); got != host {
		t.Fatalf("docker run by alias: %q", got)
	}
	// dbr starts on the default bridge; after connect its resolv.conf
	// names the embedded DNS, which forwards to --dns: its own gateway,
	// where nothing listens, so no query can leave the machine.
	_, bridgeGW := d.bridgeNet()
	mustDocker("run", "-d", "--name", "dbr", "--dns", bridgeGW.String(), "busybox", "sleep", "1000")
	mustDocker("network", "connect", "--ip", nth(s, 77).String(), "dnet", "dbr")
	if got := mustDocker("exec", "dbr", "wget", "-qO-", "http://dweb/hostname"); got != host {
		t.Fatalf("after docker network connect: %q", got)
	}
	for _, args := range [][]string{
		{"port", "dweb"},
		{"port", "dweb", "80/tcp"},
		{"port", "dweb", "81"},
		{"network", "ls"},
		{"network", "ls", "--filter", "label=by=docker", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.Labels}}"},
		{"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{len .Containers}}", "dnet"},
		{"inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.MacAddress}} {{.NetworkSettings.IPPrefixLen}}", "dbr"},
		{"inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}/{{$v.MacAddress}} {{end}}", "dbr"},
		{"ps", "--format", "{{.Names}} {{.Ports}}"},
		{"network", "inspect", "nosuch"},
		{"network", "connect", "nosuch", "dbr"},
	} {
		b, k := d.berth(args...), d.docker(args...)
		if normalise(b.Stdout) != normalise(k.Stdout) || b.Code != k.Code || normalise(b.Stderr) != normalise(k.Stderr) {
			t.Errorf("%v differs:\nberth: %s\ndocker: %s", args, b, k)
		}
	}
	// docker 28 adds "exit status 1" after the message (a CLI quirk berth
	// does not copy); the daemon's error is the same.
	for _, r := range []result{d.berth("network", "rm", "dnet"), d.docker("network", "rm", "dnet")} {
		if r.Code != 1 || !strings.HasPrefix(r.Stderr, `Error response from daemon: error while removing network: network dnet has active endpoints (name:"`) {
			t.Errorf("network rm of a network in use: %s", r)
		}
	}
	if got := mustDocker("inspect", "-f", "{{.NetworkSettings.Networks.dnet.IPAddress}}", "dbr"); got != nth(s, 77).String()+"\n" {
		t.Fatalf("--ip from docker network connect: %q", got)
	}
	// Legacy links on the default bridge (the berth CLI has no --link;
	// the API has them).
	if got := mustDocker("run", "--rm", "--link", "dbr:db", "--dns", bridgeGW.String(), "busybox", "sh", "-c", "tail -1 /etc/hosts; ping -c1 -W2 db >/dev/null && echo reached"); got != fmt.Sprintf("%s\tdb %s dbr\nreached\n", d.ipOf("dbr"), d.inspect("{{.Id}}", "dbr")[:12]) {
		t.Fatalf("--link: %q", got)
	}
	// The network modes and /etc flags print the same through both CLIs.
	for _, args := range [][]string{
		{"run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"},
		{"run", "--rm", "--network", "host", "busybox", "hostname"},
		{"run", "--rm", "--network", "container:dbr", "busybox", "sh", "-c", "hostname; ip -o -4 addr show eth0 | cut -d' ' -f7"},
		{"run", "--rm", "--hostname", "hh", "--add-host", "x.test:10.3.3.3", "--dns", "10.9.9.9", "--dns-search", "s.test", "busybox", "sh", "-c", "hostname; grep -v 172. /etc/hosts; grep -v '^#' /etc/resolv.conf"},
	} {
		b, k := d.berth(args...), d.docker(args...)
		if b.Code != 0 || b.Stdout != k.Stdout || b.Code != k.Code {
			t.Errorf("%v differs:\nberth: %s\ndocker: %s", args, b, k)
		}
	}
	mustDocker("network", "disconnect", "dnet", "dbr")
	if r := d.docker("exec", "dbr", "ping", "-c1", "-W1", ip); r.Code == 0 {
		t.Fatalf("reached dweb after disconnect: %s", r)
	}
	mustDocker("rm", "-f", "dweb", "dbr")
	if st := d.hostState(t); st != (hostState{}) {
		t.Fatalf("after docker rm -f: %+v", st)
	}
	if got := mustDocker("network", "prune", "-f"); got != "Deleted Networks:\ndnet\n\n" {
		t.Fatalf("docker network prune: %q", got)
	}
	if r := d.docker("run", "--rm", "-p", strconv.Itoa(hp)+":80", "--network", "container:x", "busybox", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "conflicting options: port publishing and the container type network mode") {
		t.Fatalf("docker run -p with container mode: %s", r)
	}
}

package integration

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestPublishHostPortRange: -p lo-hi:80 takes the first free port of the
// range, from the berth CLI and from the stock docker CLI alike; a single
// host port for a container range is refused before anything is created.
func TestPublishHostPortRange(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	// Hold the first port of the range so the daemon must skip it.
	held, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	lo := held.Addr().(*net.TCPAddr).Port
	spec := fmt.Sprintf("%d-%d:80", lo, lo+3)
	for _, cli := range []struct {
		name string
		run  func(args ...string) result
	}{{"berth", d.berth}, {"docker", d.docker}} {
		name := "range-" + cli.name
		if r := cli.run("run", "-d", "--name", name, "-p", spec, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"); r.Code != 0 {
			t.Fatalf("%s run -p %s: %s", cli.name, spec, r)
		}
		bound := d.inspect("{{json .HostConfig.PortBindings}}", name)
		if !strings.Contains(bound, fmt.Sprintf(`"HostPort":"%d-%d"`, lo, lo+3)) {
			t.Errorf("%s: PortBindings %s, want the range kept", cli.name, bound)
		}
		got := strings.TrimSpace(d.must("port", name, "80"))
		_, ps, _ := strings.Cut(got, ":")
		p, err := strconv.Atoi(ps)
		if err != nil || p <= lo || p > lo+3 {
			t.Errorf("%s: port 80 published on %q, want a free port in %d-%d other than the held %d", cli.name, got, lo+1, lo+3, lo)
			continue
		}
		if body := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", p)); body == "" {
			t.Errorf("%s: nothing answers on %d", cli.name, p)
		}
	}
	before := d.must("ps", "-aq")
	r := d.berth("create", "-p", fmt.Sprintf("%d:80-81", lo), "busybox")
	if r.Code == 0 || !strings.Contains(r.Stderr, "invalid ranges specified for container and host Ports") {
		t.Errorf("create -p %d:80-81: %s", lo, r)
	}
	if after := d.must("ps", "-aq"); after != before {
		t.Errorf("a refused -p created a container: %q -> %q", before, after)
	}
}

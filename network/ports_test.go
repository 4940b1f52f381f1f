package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"berth/errdefs"
	"berth/network/internal/nstest"

	"github.com/moby/moby/api/types/network"
)

func publish(bindings map[string][]network.PortBinding) func(*SandboxRequest) {
	return func(r *SandboxRequest) {
		r.PortBindings = network.PortMap{}
		for k, v := range bindings {
			r.PortBindings[network.MustParsePort(k)] = v
		}
	}
}

// TestPublishedPorts reaches a published port the ways a user does: from
// the host on 127.0.0.1 and on another of its addresses, and from another
// machine (a namespace behind a veth) on the host's address.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nstest.AddDummy(t, e.hostNS, "lan0", "10.55.0.1/24")
	outside := nstest.NewNetns(t)
	nstest.Link(t, e.hostNS, outside, "10.66.0.1/24", "10.66.0.2/24")

	web := e.container("web", publish(map[string][]network.PortBinding{"80/tcp": {{HostPort: "8080"}}}))
	e.httpd(web, 80, "published")
	if got := web.Settings.Ports[network.MustParsePort("80/tcp")]; len(got) != 1 || got[0].HostIP.String() != "0.0.0.0" || got[0].HostPort != "8080" {
		t.Fatalf("Ports = %+v", web.Settings.Ports)
	}
	neighbour := e.container("neighbour", nil)
	// Bridged frames go through the ip hooks when br_netfilter is loaded,
	// and are routed when it is not: both must work.
	for _, brnf := range []string{"1", "0"} {
		if err := bridgeNF(e.hostNS, brnf); err != nil {
			t.Logf("br_netfilter setting unavailable (%v): testing the kernel's default only", err)
		}
		for _, tt := range []struct{ from, addr string }{
			{e.hostNS, "127.0.0.1:8080"},
			{e.hostNS, "10.55.0.1:8080"},
			{e.hostNS, "10.66.0.1:8080"},
			{outside, "10.66.0.1:8080"},
			// Hairpin: the container reaches itself through the host.
			{web.NetnsPath, "10.55.0.1:8080"},
			{neighbour.NetnsPath, "10.66.0.1:8080"},
		} {
			if got, err := get(tt.from, tt.addr); err != nil || got != "published" {
				t.Errorf("bridge-nf-call-iptables=%s: from %s GET %s = %q, %v", brnf, tt.from, tt.addr, got, err)
			}
		}
	}

	// A second container on the same host port: Docker's message, and
	// nothing of it is left behind.
	before := e.links()
	_, err := e.setup("clash", publish(map[string][]network.PortBinding{"80/tcp": {{HostPort: "8080"}}}))
	if err == nil || !strings.Contains(err.Error(), "Bind for 0.0.0.0:8080 failed: port is already allocated") || !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("clash: %v", err)
	}
	if after := e.links(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("links after failed setup %v, before %v", after, before)
	}
	if _, err := e.svc.Sandbox(context.Background(), ctrID("clash")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("failed setup left a sandbox: %v", err)
	}
	// The failed container's address was not consumed.
	next := e.container("next", nil)
	if got := next.Settings.Networks["bridge"].IPAddress.String(); got != "172.17.0.4" {
		t.Fatalf("next container got %s", got)
	}

	// Bound to one address only: answers there, not on the others.
	local := e.container("local", publish(map[string][]network.PortBinding{"80/tcp": {{HostIP: mustAddr("127.0.0.1"), HostPort: "8081"}}}))
	e.httpd(local, 80, "local only")
	mustGet(t, e.hostNS, "127.0.0.1:8081", "local only")
	if !unreachable(e.hostNS, "10.55.0.1:8081") {
		t.Fatal("a port bound to 127.0.0.1 answered on 10.55.0.1")
	}
}

func TestRandomAndAllPorts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sb := e.container("rnd", func(r *SandboxRequest) {
		publish(map[string][]network.PortBinding{"80/tcp": {{}}})(r)
		r.PublishAll = true
		r.ExposedPorts = network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("81/tcp"): {}, network.MustParsePort("53/udp"): {}}
	})
	e.httpd(sb, 80, "random")
	e.httpd(sb, 81, "exposed")
	for _, key := range []string{"80/tcp", "81/tcp", "53/udp"} {
		b := sb.Settings.Ports[network.MustParsePort(key)]
		if len(b) != 1 {
			t.Fatalf("%s bindings = %+v", key, b)
		}
		if p, _ := strconv.Atoi(b[0].HostPort); p < 1024 {
			t.Fatalf("%s got host port %s, want an ephemeral one", key, b[0].HostPort)
		}
	}
	mustGet(t, e.hostNS, "127.0.0.1:"+sb.Settings.Ports[network.MustParsePort("80/tcp")][0].HostPort, "random")
	mustGet(t, e.hostNS, "127.0.0.1:"+sb.Settings.Ports[network.MustParsePort("81/tcp")][0].HostPort, "exposed")

	// UDP through 127.0.0.1 to an echo server in the container.
	echo := nstest.ListenPacket(t, sb.NetnsPath, "udp4", "0.0.0.0:53")
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	udpPort := sb.Settings.Ports[network.MustParsePort("53/udp")][0].HostPort
	c, err := nstest.Dialer(e.hostNS)(context.Background(), "udp4", "127.0.0.1:"+udpPort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "echo:ping" {
		t.Fatalf("udp echo = %q, %v", buf[:n], err)
	}

	// Exposed but not published, without -P: listed with no binding.
	exp := e.container("exp", func(r *SandboxRequest) { r.ExposedPorts = network.PortSet{network.MustParsePort("9000/tcp"): {}} })
	if b, ok := exp.Settings.Ports[network.MustParsePort("9000/tcp")]; !ok || b != nil {
		t.Fatalf("exposed port = %v, %v", b, ok)
	}
}

func TestPortErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A program of the host already listens on 9090.
	l := nstest.Listen(t, e.hostNS, "tcp4", "0.0.0.0:9090")
	defer l.Close()
	tests := []struct {
		name string
		b    map[string][]network.PortBinding
		want string
		kind error
	}{
		{"port of another program", map[string][]network.PortBinding{"80/tcp": {{HostPort: "9090"}}}, "failed to bind host port for 0.0.0.0:9090:172.17.0.2:80/tcp: address already in use", errdefs.ErrConflict},
		{"address not on the host", map[string][]network.PortBinding{"80/tcp": {{HostIP: mustAddr("10.9.9.9"), HostPort: "9091"}}}, "cannot assign requested address", errdefs.ErrInvalidArgument},
		{"same port twice", map[string][]network.PortBinding{"80/tcp": {{HostPort: "9092"}}, "81/tcp": {{HostPort: "9092"}}}, "Bind for 0.0.0.0:9092 failed: port is already allocated", errdefs.ErrConflict},
		{"ipv6 host address", map[string][]network.PortBinding{"80/tcp": {{HostIP: mustAddr("::1"), HostPort: "9093"}}}, "only IPv4 host addresses", errdefs.ErrInvalidArgument},
		{"bad host port", map[string][]network.PortBinding{"80/tcp": {{HostPort: "http"}}}, `invalid host port "http"`, errdefs.ErrInvalidArgument},
		{"sctp", map[string][]network.PortBinding{"80/sctp": {{HostPort: "9094"}}}, "only tcp and udp", errdefs.ErrInvalidArgument},
	}
	for i, tt := range tests {
		_, err := e.setup(fmt.Sprintf("bad%d", i), publish(tt.b))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.kind) {
			t.Errorf("%s: err = %v, want %q (%v)", tt.name, err, tt.want, tt.kind)
		}
	}
	// A range skips the taken port.
	sb := e.container("ranged", publish(map[string][]network.PortBinding{"80/tcp": {{HostPort: "9090-9095"}}}))
	if got := sb.Settings.Ports[network.MustParsePort("80/tcp")][0].HostPort; got != "9091" {
		t.Fatalf("range picked %s, want 9091", got)
	}
	// Nothing of the failed attempts is left: no sandbox, no veth.
	e.svc.mu.RLock()
	n := len(e.svc.sandboxes)
	e.svc.mu.RUnlock()
	if n != 1 {
		t.Fatalf("%d sandboxes after failures, want 1", n)
	}
}

func mustAddr(s string) (a netipAddr) { return parseAddr(s) }

// The host port stays reserved while the container runs: nobody else can
// bind it.
func TestPortReservation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.container("holder", publish(map[string][]network.PortBinding{"80/tcp": {{HostPort: "8181"}}}))
	err := nstestListenErr(e.hostNS, "0.0.0.0:8181")
	if err == nil {
		t.Fatal("another program could bind a published port")
	}
	if err := e.svc.Teardown(context.Background(), ctrID("holder")); err != nil {
		t.Fatal(err)
	}
	if err := nstestListenErr(e.hostNS, "0.0.0.0:8181"); err != nil {
		t.Fatalf("port still held after teardown: %v", err)
	}
}

func nstestListenErr(ns, addr string) error {
	var l net.Listener
	err := nsDo(ns, func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if l != nil {
		l.Close()
	}
	return err
}

func bridgeNF(ns, value string) error {
	return nsDo(ns, func() error {
		return os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte(value), 0o644)
	})
}

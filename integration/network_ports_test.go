package integration

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth/network/nsenter"
	"berth/testutil"
)

// udpEcho answers each datagram with "pong:" and the datagram, from inside
// the network namespace at path (a container's SandboxKey): busybox has no
// UDP server, so the test itself serves in the container's namespace.
func udpEcho(t *testing.T, path string, port int) {
	t.Helper()
	var pc net.PacketConn
	err := nsenter.Do(path, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("pong:"), buf[:n]...), from)
		}
	}()
}

// udpAsk sends a datagram to addr and returns the answer ("" if none).
func udpAsk(addr string) string {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for range 10 { // the first datagram may race the listener's start
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			return string(buf[:n])
		}
	}
	return ""
}

// refused reports whether a TCP connection to addr is refused or times
// out rather than reaching a server.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp4", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// TestNetworkPublishedPorts: -p in its forms, -P, the port command, what
// answers where, and the rules behind it.
func TestNetworkPublishedPorts(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r := d.berthIn(f, "import", "-c", `CMD ["httpd","-f","-p","80","-h","/etc"]`, "-c", "EXPOSE 80", "-", "web:latest"); r.Code != 0 {
		t.Fatalf("import web: %s", r)
	}
	other := hostAddr(t)
	hp1, hp2, hp3, hu := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "udp")
	id := strings.TrimSpace(d.must("run", "-d", "--name", "pub", "-p", fmt.Sprintf("%d:80", hp1), "-p", fmt.Sprintf("127.0.0.1:%d:80", hp2),
		"-p", fmt.Sprintf("%s:%d:80", other, hp3), "-p", "80", "-p", fmt.Sprintf("%d:5353/udp", hu), "web"))
	host := id[:12] + "\n"

	portOut := d.must("port", "pub")
	lines := strings.Split(strings.TrimSpace(portOut), "\n")
	var random string
	for _, l := range lines {
		if p, ok := strings.CutPrefix(l, "80/tcp -> 0.0.0.0:"); ok && p != strconv.Itoa(hp1) {
			random = p
		}
	}
	want := []string{fmt.Sprintf("5353/udp -> 0.0.0.0:%d", hu), fmt.Sprintf("80/tcp -> 0.0.0.0:%d", hp1), "80/tcp -> 0.0.0.0:" + random, fmt.Sprintf("80/tcp -> 127.0.0.1:%d", hp2), fmt.Sprintf("80/tcp -> %s:%d", other, hp3)}
	if random == "" || !sameSet(lines, want) {
		t.Fatalf("port pub:\n%s\nwant (any order) %q", portOut, want)
	}
	if got := d.must("port", "pub", "5353/udp"); got != fmt.Sprintf("0.0.0.0:%d\n", hu) {
		t.Fatalf("port pub 5353/udp: %q", got)
	}
	if r := d.berth("port", "pub", "81"); r.Code != 1 || !strings.Contains(r.Stderr, "No public port '81' published for pub") {
		t.Fatalf("port of an unpublished port: %s", r)
	}
	if ps := d.must("ps", "--format", "{{.Ports}}"); !strings.Contains(ps, fmt.Sprintf("127.0.0.1:%d->80/tcp", hp2)) || !strings.Contains(ps, fmt.Sprintf("0.0.0.0:%d->5353/udp", hu)) {
		t.Fatalf("ps ports: %q", ps)
	}

	// hp1 and the random port answer on every host address; hp2 only on
	// 127.0.0.1, hp3 only on the other address.
	for _, addr := range []string{"127.0.0.1:" + strconv.Itoa(hp1), other.String() + ":" + strconv.Itoa(hp1), "127.0.0.1:" + random,
		other.String() + ":" + random, "127.0.0.1:" + strconv.Itoa(hp2), other.String() + ":" + strconv.Itoa(hp3)} {
		if got := fetch(t, "http://"+addr+"/hostname"); got != host {
			t.Errorf("GET %s: %q", addr, got)
		}
	}
	if !refused(other.String() + ":" + strconv.Itoa(hp2)) {
		t.Errorf("a port published on 127.0.0.1 answers on %s", other)
	}
	if !refused("127.0.0.1:" + strconv.Itoa(hp3)) {
		t.Errorf("a port published on %s answers on 127.0.0.1", other)
	}
	udpEcho(t, d.inspect("{{.NetworkSettings.SandboxKey}}", "pub"), 5353)
	for _, addr := range []string{"127.0.0.1", other.String()} {
		if got := udpAsk(fmt.Sprintf("%s:%d", addr, hu)); got != "pong:ping" {
			t.Errorf("udp via %s:%d: %q", addr, hu, got)
		}
	}
	// A container reaches a published port through the gateway, its own
	// included (hairpin).
	_, gw := d.bridgeNet()
	if got := d.must("exec", "pub", "wget", "-qO-", fmt.Sprintf("http://%s:%d/hostname", gw, hp1)); got != host {
		t.Errorf("hairpin through %s:%d: %q", gw, hp1, got)
	}

	// -P publishes the image's EXPOSE on a random port.
	d.must("run", "-d", "--name", "all", "-P", "web")
	allPort := strings.TrimSpace(d.must("port", "all", "80"))
	if p, ok := strings.CutPrefix(allPort, "0.0.0.0:"); !ok || fetch(t, "http://127.0.0.1:"+p+"/hostname") != d.inspect("{{.Id}}", "all")[:12]+"\n" {
		t.Fatalf("-P: port %q", allPort)
	}

	subnet, _ := d.bridgeNet()
	rules := d.ruleset()
	for _, want := range []string{
		fmt.Sprintf(`ip saddr %s oifname != "%s" masquerade`, subnet, d.bridge),
		fmt.Sprintf("tcp dport %d dnat to %s:80", hp1, d.ipOf("pub")),
		fmt.Sprintf("ip daddr 127.0.0.1 tcp dport %d dnat to %s:80", hp2, d.ipOf("pub")),
		fmt.Sprintf("udp dport %d dnat to %s:5353", hu, d.ipOf("pub")),
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rules)
		}
	}

	// Live restore: published ports answer while the daemon is down, and
	// after it is back the daemon holds them again.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", hp1)); got != host {
		t.Errorf("published port with the daemon down: %q", got)
	}
	d.start()
	if got := fetch(t, fmt.Sprintf("http://%s:%d/hostname", other, hp1)); got != host {
		t.Errorf("published port after a daemon restart: %q", got)
	}
	if ln, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", hp1)); err == nil {
		ln.Close()
		t.Errorf("port %d is free for others after a daemon restart", hp1)
	}

	// A port held by another container, or by another program: Docker's
	// errors, and nothing configured.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	before := d.hostState(t)
	for _, tc := range []struct{ port, err string }{
		{strconv.Itoa(hp1), fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", hp1)},
		{strconv.Itoa(busy), fmt.Sprintf("failed to bind host port for 0.0.0.0:%d:", busy)},
	} {
		r := d.berth("run", "-d", "--name", "clash", "-p", tc.port+":80", "web")
		if r.Code != 125 || !strings.Contains(r.Stderr, "driver failed programming external connectivity on endpoint clash") || !strings.Contains(r.Stderr, tc.err) {
			t.Errorf("-p %s: %s", tc.port, r)
		}
		if after := d.hostState(t); after != before {
			t.Errorf("failed -p %s left kernel state: %+v -> %+v", tc.port, before, after)
		}
		d.must("rm", "clash")
	}
	if r := d.berth("port", "clash"); r.Code == 0 {
		t.Errorf("port of a removed container: %s", r)
	}

	d.must("rm", "-f", "pub", "all")
	if st := d.hostState(t); st != (hostState{}) {
		t.Fatalf("after rm: %+v\n%s", st, d.ruleset())
	}
	if !refused("127.0.0.1:" + strconv.Itoa(hp1)) {
		t.Fatal("the published port still answers after rm")
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestNetworkCleanup: stop, kill and rm undo a container's networking; a
// daemon that crashed while containers ran removes what they left once
// they are gone; a daemon stopped with no containers leaves no rules.
func TestNetworkCleanup(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for i, stop := range [][]string{{"stop", "-t", "1"}, {"kill"}, {"rm", "-f"}} {
		name := fmt.Sprintf("c%d", i)
		d.must("run", "-d", "--name", name, "-p", "80", "busybox", "sleep", "1000")
		if st := d.hostState(t); st != (hostState{veths: 1, netns: 1, dnat: 1}) {
			t.Fatalf("running %s: %+v", name, st)
		}
		d.must(append(stop, name)...)
		waitFor(t, func() bool { return d.hostState(t) == hostState{} })
	}

	// Crash: the daemon is SIGKILLed while two containers with published
	// ports run; their processes (and shims) are then killed.
	d.must("run", "-d", "--name", "ca", "-p", "80", "busybox", "sleep", "1000")
	d.must("run", "-d", "--name", "cb", "-p", "80", "busybox", "sleep", "1000")
	pids := []int{}
	for _, name := range []string{"ca", "cb"} {
		pid, _ := strconv.Atoi(d.inspect("{{.State.Pid}}", name))
		pids = append(pids, pid, parentPID(t, pid))
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d.cmd = nil
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		waitFor(t, func() bool { return syscall.Kill(pid, 0) != nil })
	}
	if st := d.hostState(t); st.veths != 2 || st.netns != 2 || st.dnat != 2 {
		t.Fatalf("before restart, expected the crash's leftovers: %+v", st)
	}
	d.start()
	if st := d.hostState(t); st != (hostState{}) {
		t.Fatalf("after restart: %+v\n%s", st, d.ruleset())
	}
	if got := d.must("ps", "-a", "--format", "{{.Names}} {{.State}}"); !strings.Contains(got, "ca exited") || !strings.Contains(got, "cb exited") {
		t.Fatalf("ps after restart: %q", got)
	}
	// The addresses are free again: a new container gets the first one.
	subnet, _ := d.bridgeNet()
	d.must("run", "-d", "--name", "next", "busybox", "sleep", "1000")
	if got := d.ipOf("next"); got != nth(subnet, 2).String() {
		t.Fatalf("next got %s, want %s", got, nth(subnet, 2))
	}
	d.must("rm", "-f", "next")
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if rules := d.ruleset(); rules != "" {
		t.Fatalf("rules left by a daemon stopped with no containers:\n%s", rules)
	}
	d.start()
	if d.ruleset() == "" {
		t.Fatal("a started daemon has no table")
	}
}

// parentPID is the parent of pid (a container's shim).
func parentPID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command may hold spaces: fields start after its closing paren.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, _ := strconv.Atoi(f[1])
	if out, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid)); !strings.Contains(string(out), "shim") {
		t.Fatalf("parent %d of %d is not a shim: %q", ppid, pid, out)
	}
	return ppid
}

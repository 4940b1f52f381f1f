package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"berth/network/dns"
	"berth/network/internal/nstest"
	"berth/network/nsenter"

	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
)

var update = flag.Bool("update", false, "rewrite golden files")

// env is one test's world: a throwaway namespace playing the host, with its
// own resolv.conf, hosts file, database and exec root.
type env struct {
	t       testing.TB
	hostNS  string
	dbPath  string
	db      *bolt.DB
	opts    Options
	svc     *Service
	closed  bool
	workdir string
}

// newEnv starts a Service in a fresh host namespace. The host's resolver
// is 127.0.0.1, served by a fake upstream inside that namespace that knows
// upstream.test, so no query can leave it.
func newEnv(t testing.TB, mod ...func(*Options)) *env {
	t.Helper()
	nstest.RequireRoot(t)
	e := &env{t: t, hostNS: nstest.NewNetns(t), workdir: t.TempDir()}
	resolv := filepath.Join(e.workdir, "resolv.conf")
	hosts := filepath.Join(e.workdir, "hosts")
	write(t, resolv, "# host resolver\nnameserver 127.0.0.1\nsearch example.test\noptions edns0\n")
	write(t, hosts, "127.0.0.1\tlocalhost\n10.0.0.9\thost-entry\n")
	e.startUpstream("127.0.0.1:53", map[string]string{"upstream.test": "198.51.100.7"})
	e.dbPath = filepath.Join(e.workdir, "berth.db")
	var err error
	if e.db, err = bolt.Open(e.dbPath, 0o600, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	e.opts = Options{DB: e.db, ExecRoot: filepath.Join(e.workdir, "exec"), HostNetns: e.hostNS,
		TableName: "berth", BridgeName: "berth0", ResolvConf: resolv, HostsFile: hosts}
	for _, m := range mod {
		m(&e.opts)
	}
	e.svc = e.open()
	t.Cleanup(e.shutdown)
	return e
}

func (e *env) open() *Service {
	e.t.Helper()
	svc, err := New(context.Background(), e.opts)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return svc
}

// restart is a daemon restart: Close, then New on the same state.
func (e *env) restart() {
	e.t.Helper()
	if err := e.svc.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	e.svc = e.open()
}

// shutdown tears every sandbox down, so no namespace mount outlives the
// test, then closes the service.
func (e *env) shutdown() {
	if e.closed {
		return
	}
	e.closed = true
	ctx := context.Background()
	e.svc.mu.RLock()
	var ids []string
	for id := range e.svc.sandboxes {
		ids = append(ids, id)
	}
	e.svc.mu.RUnlock()
	for _, id := range ids {
		if err := e.svc.Teardown(ctx, id); err != nil {
			e.t.Errorf("cleanup teardown %s: %v", id, err)
		}
	}
	if err := e.svc.Close(); err != nil {
		e.t.Errorf("cleanup close: %v", err)
	}
}

// startUpstream serves names from the host namespace at addr.
func (e *env) startUpstream(addr string, names map[string]string) {
	e.t.Helper()
	tbl := upstreamTable{}
	for n, ip := range names {
		tbl[n] = []netip.Addr{netip.MustParseAddr(ip)}
	}
	udp := nstest.ListenPacket(e.t, e.hostNS, "udp4", addr)
	tcp := nstest.Listen(e.t, e.hostNS, "tcp4", addr)
	srv := dns.NewServer(tbl, nil, nil)
	srv.Serve(udp, tcp)
	e.t.Cleanup(func() { srv.Close() })
}

type upstreamTable map[string][]netip.Addr

func (u upstreamTable) LookupIPv4(name string) ([]netip.Addr, bool) {
	a, ok := u[name]
	return a, ok
}
func (u upstreamTable) LookupPTR(netip.Addr) (string, bool) { return "", false }
func (u upstreamTable) Upstreams() []string                 { return nil }

// container sets up a sandbox for a fake container whose id is derived
// from name, and returns it.
func (e *env) container(name string, mod func(*SandboxRequest)) *Sandbox {
	e.t.Helper()
	sb, err := e.setup(name, mod)
	if err != nil {
		e.t.Fatalf("Setup %s: %v", name, err)
	}
	return sb
}

func (e *env) setup(name string, mod func(*SandboxRequest)) (*Sandbox, error) {
	dir := filepath.Join(e.workdir, "containers", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	req := SandboxRequest{ContainerID: ctrID(name), Name: name, Dir: dir}
	if mod != nil {
		mod(&req)
	}
	return e.svc.Setup(context.Background(), req)
}

// ctrID is a stable 64-hex id for a test container name.
func ctrID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// httpd starts busybox httpd in the container's namespace serving body.
func (e *env) httpd(sb *Sandbox, port int, body string) {
	e.t.Helper()
	dir := e.t.TempDir()
	write(e.t, filepath.Join(dir, "index.html"), body)
	nstest.Start(e.t, sb.NetnsPath, "busybox", "httpd", "-f", "-p", fmt.Sprint(port), "-h", dir)
	waitListening(e.t, sb.NetnsPath, fmt.Sprintf("127.0.0.1:%d", port))
}

func waitListening(t testing.TB, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := nstest.Dialer(ns)(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches http://addr/ from inside namespace ns.
func get(ns, addr string) (string, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: nstest.Dialer(ns), DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func mustGet(t testing.TB, ns, addr, want string) {
	t.Helper()
	got, err := get(ns, addr)
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	if got != want {
		t.Fatalf("GET %s = %q, want %q", addr, got, want)
	}
}

// resolve looks a name up through the embedded DNS server of a container.
func resolve(ns, name string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return nstest.Dialer(ns)(ctx, network, "127.0.0.11:53")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.LookupHost(ctx, name)
}

func write(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkGolden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		write(t, path, got)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// createNet creates a user network with a fixed bridge name.
func (e *env) createNet(name, subnet string, mod func(*network.CreateRequest)) string {
	e.t.Helper()
	req := network.CreateRequest{Name: name, Options: map[string]string{optBridgeName: "br-" + name}}
	if subnet != "" {
		req.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix(subnet)}}}
	}
	if mod != nil {
		mod(&req)
	}
	resp, err := e.svc.NetworkCreate(context.Background(), req)
	if err != nil {
		e.t.Fatalf("create network %s: %v", name, err)
	}
	return resp.ID
}

// links lists the host namespace's interfaces.
func (e *env) links() []string {
	e.t.Helper()
	ls, err := nstest.Handle(e.t, e.hostNS).LinkList()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Attrs().Name)
	}
	return out
}

func (e *env) ruleset() string {
	e.t.Helper()
	out, err := nstest.Run(context.Background(), e.hostNS, "nft", "list", "table", "ip", e.opts.TableName)
	if err != nil {
		return ""
	}
	return out
}

// serveHTTP answers every request on l with body until l is closed.
func serveHTTP(l net.Listener, body string) {
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
}

type netipAddr = netip.Addr

func parseAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func nsDo(ns string, fn func() error) error { return nsenter.Do(ns, fn) }

// unreachable reports whether a TCP connection to addr from ns fails
// within a short time (isolation drops packets, so it times out).
func unreachable(ns, addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	c, err := nstest.Dialer(ns)(ctx, "tcp", addr)
	if err == nil {
		c.Close()
	}
	return err != nil
}

// portsOf is a single binding hostPort -> key.
func portsOf(key, hostPort string) map[string][]network.PortBinding {
	return map[string][]network.PortBinding{key: {{HostPort: hostPort}}}
}

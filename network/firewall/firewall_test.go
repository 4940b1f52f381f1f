package firewall

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"berth/network/internal/nstest"

	"github.com/google/nftables"
)

var update = flag.Bool("update", false, "rewrite golden files")

func conn(t *testing.T, nsPath string) *nftables.Conn {
	t.Helper()
	f, err := os.Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listTable(t *testing.T, nsPath, table string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft binary (Debian package nftables) is needed to list the ruleset for the golden comparison")
	}
	return nstest.Run(context.Background(), nsPath, "nft", "list", "table", "ip", table)
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func sampleConfig() Config {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	return Config{
		Table: "berth",
		Networks: []Network{
			{Bridge: "berth0", Subnet: p("172.17.0.0/16"), Masquerade: true},
			{Bridge: "br-0123456789ab", Subnet: p("10.77.0.0/24"), Masquerade: true},
			{Bridge: "br-internal0001", Subnet: p("10.78.0.0/24"), Internal: true, Masquerade: true},
		},
		Ports: []Port{
			{Proto: "tcp", HostPort: 8080, ContainerIP: a("172.17.0.2"), ContainerPort: 80, Comment: "web 80/tcp"},
			{Proto: "udp", HostIP: a("127.0.0.1"), HostPort: 5353, ContainerIP: a("10.77.0.3"), ContainerPort: 53},
		},
	}
}

func TestRulesetGolden(t *testing.T) {
	t.Parallel()
	ns := nstest.NewNetns(t)
	c := conn(t, ns)
	if err := Apply(c, sampleConfig()); err != nil {
		t.Fatal(err)
	}
	out, err := listTable(t, ns, "berth")
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	checkGolden(t, "ruleset.golden", out)

	// Applying again replaces the table: no rule is doubled.
	if err := Apply(c, sampleConfig()); err != nil {
		t.Fatal(err)
	}
	again, _ := listTable(t, ns, "berth")
	if again != out {
		t.Errorf("second Apply changed the ruleset:\n%s", again)
	}

	// Dropping the ports and a network leaves exactly the rest, whether
	// the table is replaced or refilled.
	cfg := sampleConfig()
	cfg.Ports = nil
	cfg.Networks = cfg.Networks[:1]
	for _, install := range []func(*nftables.Conn, Config) error{Apply, Update} {
		if err := Apply(c, sampleConfig()); err != nil {
			t.Fatal(err)
		}
		if err := install(c, cfg); err != nil {
			t.Fatal(err)
		}
		small, _ := listTable(t, ns, "berth")
		checkGolden(t, "ruleset-small.golden", small)
	}
	// Update grows a table back to the full ruleset.
	if err := Update(c, sampleConfig()); err != nil {
		t.Fatal(err)
	}
	if full, _ := listTable(t, ns, "berth"); full != out {
		t.Errorf("Update to the full config:\n%s", full)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	ns := nstest.NewNetns(t)
	c := conn(t, ns)
	// Deleting a table that was never there is fine (daemon start after a
	// clean stop).
	if err := Delete(c, "berth_x"); err != nil {
		t.Fatal(err)
	}
	cfg := sampleConfig()
	cfg.Table = "berth_x"
	if err := Apply(c, cfg); err != nil {
		t.Fatal(err)
	}
	if ok, err := Exists(c, "berth_x"); err != nil || !ok {
		t.Fatalf("Exists after Apply = %v, %v", ok, err)
	}
	// A second table beside ours is untouched by our Delete.
	other := sampleConfig()
	other.Table = "someone_else"
	if err := Apply(c, other); err != nil {
		t.Fatal(err)
	}
	if err := Delete(c, "berth_x"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := Exists(c, "berth_x"); ok {
		t.Fatal("table still there after Delete")
	}
	if ok, _ := Exists(c, "someone_else"); !ok {
		t.Fatal("Delete removed another table")
	}
}

func TestApplyRejectsEmptyTable(t *testing.T) {
	t.Parallel()
	if err := Apply(nil, Config{}); err == nil {
		t.Fatal("Apply with no table name succeeded")
	}
}

func TestResolverGolden(t *testing.T) {
	t.Parallel()
	ns := nstest.NewNetns(t)
	c := conn(t, ns)
	if err := ApplyResolver(c, "berth", 40001, 40002); err != nil {
		t.Fatal(err)
	}
	// Reapplying with new ports (a daemon restart) replaces the rules.
	if err := ApplyResolver(c, "berth", 41001, 41002); err != nil {
		t.Fatal(err)
	}
	out, err := listTable(t, ns, "berth")
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	checkGolden(t, "resolver.golden", out)
}

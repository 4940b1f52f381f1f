package network

import (
	"context"
	"os"
	"slices"
	"testing"

	"berth/network/nsenter"
)

// TestPrepare: Prepare returns with the namespace and files in place,
// Wait with the endpoint plugged in; a Teardown right after Prepare waits
// for the plumbing and leaves nothing.
func TestPrepare(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, name := range []string{"waited", "torn"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := e.svc.Prepare(ctx, SandboxRequest{ContainerID: ctrID(name), Name: name, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if !nsenter.Mounted(p.NetnsPath) {
				t.Fatalf("namespace %s not there when Prepare returned", p.NetnsPath)
			}
			for _, f := range []string{p.HostsPath, p.HostnamePath, p.ResolvConfPath} {
				if _, err := os.Stat(f); err != nil {
					t.Fatalf("file not written when Prepare returned: %v", err)
				}
			}
			veth := "veth" + p.Settings.Networks["bridge"].EndpointID[:7]
			if name == "torn" {
				if err := e.svc.Teardown(ctx, ctrID(name)); err != nil {
					t.Fatal(err)
				}
				if slices.Contains(e.links(), veth) || nsenter.Mounted(p.NetnsPath) {
					t.Fatalf("teardown during the plumbing left the veth or namespace")
				}
				return
			}
			if err := p.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(e.links(), veth) {
				t.Fatalf("veth %s missing after Wait", veth)
			}
		})
	}
}

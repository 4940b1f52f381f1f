package network

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestTeardownReleasesLast: while a sandbox's veth is being deleted (the
// service lock is not held), other containers set up, but none gets its
// address; a Setup of the same container and a network removal wait for
// it; its published port is free at once; and once it is gone the address
// is handed out again.
func TestTeardownReleasesLast(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := e.container("a", publish(portsOf("80/tcp", "8081")))
	veth := "veth" + a.Settings.Networks["bridge"].EndpointID[:7]
	held, resume := make(chan struct{}), make(chan struct{})
	var holdOnce, resumeOnce sync.Once
	release := func() { resumeOnce.Do(func() { close(resume) }) }
	// Registered after newEnv's: runs first, so a failed test still ends.
	t.Cleanup(release)
	e.svc.releaseHook = func(id string) {
		if id == ctrID("a") {
			holdOnce.Do(func() { close(held) })
			<-resume
		}
	}
	torn := make(chan error, 1)
	go func() { torn <- e.svc.Teardown(ctx, ctrID("a")) }()
	<-held

	if !slices.Contains(e.links(), veth) {
		t.Fatalf("veth %s gone before its deletion", veth)
	}
	b := e.container("b", publish(portsOf("80/tcp", "8081")))
	if ipOf(b, "bridge") == ipOf(a, "bridge") {
		t.Fatalf("b got %s while a's veth still exists", ipOf(b, "bridge"))
	}
	again := make(chan error, 1)
	go func() {
		_, err := e.setup("a", nil)
		again <- err
	}()
	netID := e.createNet("app", "10.99.0.0/24", nil)
	removed := make(chan error, 1)
	go func() { removed <- e.svc.NetworkRemove(ctx, netID) }()
	select {
	case err := <-again:
		t.Fatalf("Setup of a returned during its teardown: %v", err)
	case err := <-removed:
		t.Fatalf("network removal returned during a teardown: %v", err)
	case <-time.After(100 * time.Millisecond):
	}

	release()
	if err := <-torn; err != nil {
		t.Fatal(err)
	}
	if err := <-again; err != nil {
		t.Fatalf("Setup of a after its teardown: %v", err)
	}
	if err := <-removed; err != nil {
		t.Fatalf("network removal after the teardown: %v", err)
	}
	if slices.Contains(e.links(), veth) {
		t.Fatalf("veth %s left after Teardown", veth)
	}
	sb, err := e.svc.Sandbox(ctx, ctrID("a"))
	if err != nil || ipOf(sb, "bridge") != ipOf(a, "bridge") {
		t.Fatalf("a's new sandbox: %v, want the freed %s", err, ipOf(a, "bridge"))
	}
}

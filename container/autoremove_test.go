package container

import (
	"context"
	"os"
	"strings"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
)

// TestAutoRemove: an --rm container's writable layer is mounted volatile
// (nothing of it is ever synced) and, once it exits, nothing of it is
// left when the removal is reported: record, directories, mount, snapshot,
// the runtime's container.
func TestAutoRemove(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	resp, err := f.svc.ContainerCreate(ctx, CreateOptions{Name: "rm-me",
		Config:     &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "read x"}, OpenStdin: true},
		HostConfig: &container.HostConfig{AutoRemove: true}})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.ID
	if err := f.svc.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	opts := mountOptions(t, f.svc.rootfs(id))
	if !strings.Contains(opts, "volatile") {
		t.Fatalf("rootfs of an --rm container mounted %q, want volatile", opts)
	}
	if err := f.svc.ContainerKill(ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	f.wait(id, container.WaitConditionRemoved)
	if _, err := f.svc.ContainerInspect(ctx, id, false); !errdefs.NotFound(err) {
		t.Fatalf("inspect after --rm: %v", err)
	}
	for _, dir := range []string{f.svc.containerDir(id), f.svc.shimDir(id)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s left: %v", dir, err)
		}
	}
	if opts := mountOptions(t, f.svc.rootfs(id)); opts != "" {
		t.Fatalf("rootfs still mounted: %s", opts)
	}
	if _, err := f.svc.opts.Snapshotter.Stat(ctx, id); !errdefs.NotFound(err) {
		t.Fatalf("writable layer left: %v", err)
	}
	rt, err := f.svc.runtime("runc")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := rt.State(ctx, id); err == nil {
		t.Fatalf("the runtime still has the container: %+v", st)
	}
}

// TestRestoreRemovesExitedAutoRemove: an --rm container that exited while
// the daemon was down is removed when the daemon comes back, as dockerd
// does (its volatile layer is never mounted again); one never started
// stays.
func TestRestoreRemovesExitedAutoRemove(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	create := func(name string) string {
		resp, err := f.svc.ContainerCreate(ctx, CreateOptions{Name: name,
			Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{AutoRemove: true}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.ID
	}
	exited, fresh := create("exited-while-down"), create("never-started")
	// What the record says when the daemon learns of the exit at restore.
	e, err := f.svc.lookup(exited)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.rec.State.Status, e.rec.State.HasBeenStarted = StatusExited, true
	err = f.svc.save(e)
	e.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	again, err := New(f.svc.opts)
	if err != nil {
		t.Fatal(err)
	}
	again.Restore(ctx)
	if _, err := again.ContainerInspect(ctx, exited, false); !errdefs.NotFound(err) {
		t.Fatalf("exited --rm container after restore: %v", err)
	}
	if _, err := again.opts.Snapshotter.Stat(ctx, exited); !errdefs.NotFound(err) {
		t.Fatalf("its writable layer after restore: %v", err)
	}
	if _, err := again.ContainerInspect(ctx, fresh, false); err != nil {
		t.Fatalf("never-started --rm container after restore: %v", err)
	}
}

// mountOptions returns the superblock options of the mount at path, or ""
// when nothing is mounted there.
func mountOptions(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[4] != path {
			continue
		}
		return f[len(f)-1]
	}
	return ""
}

// TestRestartAutoRemove: restart keeps an --rm container, as dockerd does
// (the exit it causes is not the container's end), and mounts its volatile
// layer again; its next exit removes it.
func TestRestartAutoRemove(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	resp, err := f.svc.ContainerCreate(ctx, CreateOptions{Name: "rm-restart",
		Config:     &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "echo run >> /runs; read x"}, OpenStdin: true},
		HostConfig: &container.HostConfig{AutoRemove: true}})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.ID
	if err := f.svc.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if err := f.svc.ContainerRestart(ctx, id, StopOptions{Timeout: &zero}); err != nil {
		t.Fatalf("restart: %v", err)
	}
	ins, err := f.svc.ContainerInspect(ctx, id, false)
	if err != nil || !ins.State.Running {
		t.Fatalf("after restart: %+v, %v", ins.State, err)
	}
	if opts := mountOptions(t, f.svc.rootfs(id)); !strings.Contains(opts, "volatile") {
		t.Fatalf("rootfs after restart mounted %q", opts)
	}
	if err := f.svc.ContainerKill(ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	f.wait(id, container.WaitConditionRemoved)
	if _, err := f.svc.ContainerInspect(ctx, id, false); !errdefs.NotFound(err) {
		t.Fatalf("inspect after the exit that follows the restart: %v", err)
	}
}

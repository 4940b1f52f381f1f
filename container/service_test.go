package container

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/content"
	"berth/errdefs"
	"berth/events"
	"berth/image"
	"berth/snapshot/overlay"
	"berth/task"
	"berth/testutil"

	"github.com/moby/moby/api/types/container"
	bolt "go.etcd.io/bbolt"
)

func TestMain(m *testing.M) {
	// The test binary is also the shim, as the berth binary is in use.
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(task.ShimMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

type fixture struct {
	t    *testing.T
	svc  *Service
	imgs *image.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testutil.RequiresRoot(t)
	if _, err := os.Stat(task.RuncPath); err != nil {
		t.Skip("runc is not installed")
	}
	root, err := os.MkdirTemp("", "bct-")
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(root, "berth.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs, _ := content.New(filepath.Join(root, "content"))
	sn, err := overlay.New(ctx, filepath.Join(root, "snapshots"), db)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := image.New(image.Options{DB: db, Content: cs, Snapshotter: sn, Driver: "overlay2"})
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	svc, err := New(Options{DB: db, Root: filepath.Join(root, "containers"), ExecRoot: filepath.Join(root, "exec"),
		Images: imgs, Snapshotter: sn, Driver: "overlay2", Binary: self,
		Runtimes: map[string]string{"runc": task.RuncPath}, DefaultRuntime: "runc", Events: events.New()})
	if err != nil {
		t.Fatal(err)
	}
	imgs.SetContainerUsage(svc)
	t.Cleanup(func() {
		for _, e := range svc.all() {
			svc.ContainerRemove(context.Background(), e.rec.ID, RemoveOptions{Force: true})
		}
		db.Close()
		os.RemoveAll(root)
	})
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := imgs.ImportImage(ctx, f, image.ImportOptions{Ref: "busybox:latest", Changes: []string{`CMD ["sh"]`}}); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, svc: svc, imgs: imgs}
}

func (f *fixture) create(name string, cmd ...string) string {
	f.t.Helper()
	resp, err := f.svc.ContainerCreate(context.Background(), CreateOptions{Name: name, Config: &container.Config{Image: "busybox", Cmd: cmd}})
	if err != nil {
		f.t.Fatalf("create: %v", err)
	}
	return resp.ID
}

func (f *fixture) wait(id string, cond container.WaitCondition) int64 {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := f.svc.ContainerWait(ctx, id, cond)
	if err != nil {
		f.t.Fatal(err)
	}
	r, ok := <-ch
	if !ok {
		f.t.Fatal("wait timed out")
	}
	return r.StatusCode
}

func (f *fixture) logs(id string) string {
	f.t.Helper()
	ch, _, err := f.svc.ContainerLogs(context.Background(), id, LogsOptions{Stdout: true, Stderr: true, Tail: -1})
	if err != nil {
		f.t.Fatal(err)
	}
	var b bytes.Buffer
	for e := range ch {
		b.Write(e.Line)
	}
	return b.String()
}

func TestRunToCompletion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.create("hello", "sh", "-c", "echo hi from $(hostname); exit 3")
	if err := f.svc.ContainerStart(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(id, container.WaitConditionNotRunning); code != 3 {
		t.Fatalf("exit code %d", code)
	}
	if got := f.logs(id); got != "hi from "+id[:12]+"\n" {
		t.Fatalf("logs %q", got)
	}
	ins, err := f.svc.ContainerInspect(ctx, "hello", false)
	if err != nil || ins.State.Status != "exited" || ins.State.ExitCode != 3 || ins.Name != "/hello" {
		t.Fatalf("inspect: %+v %v", ins.State, err)
	}
	if err := f.svc.ContainerStop(ctx, id, StopOptions{}); !errdefs.IsNotModified(err) {
		t.Fatalf("stop of a stopped container: %v", err)
	}
	// It can run again.
	if err := f.svc.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	f.wait(id, container.WaitConditionNotRunning)
	if got := strings.Count(f.logs(id), "hi from"); got != 2 {
		t.Fatalf("second run's logs: %d lines", got)
	}
}

func TestStopKillPauseRemove(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.create("sleeper", "sleep", "1000")
	if err := f.svc.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ContainerRemove(ctx, id, RemoveOptions{}); !errdefs.Conflict(err) || !strings.Contains(err.Error(), "You cannot remove a running container") {
		t.Fatalf("rm of a running container: %v", err)
	}
	if err := f.svc.ContainerPause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ContainerPause(ctx, id); err == nil || !strings.Contains(err.Error(), "is already paused") {
		t.Fatalf("second pause: %v", err)
	}
	list, _ := f.svc.ContainerList(ctx, ListOptions{})
	if len(list) != 1 || !strings.HasSuffix(list[0].Status, "(Paused)") {
		t.Fatalf("ps: %+v", list)
	}
	if err := f.svc.ContainerUnpause(ctx, id); err != nil {
		t.Fatal(err)
	}
	// sleep as PID 1 ignores SIGTERM: stop waits the timeout, then kills.
	one := 1
	start := time.Now()
	if err := f.svc.ContainerStop(ctx, id, StopOptions{Timeout: &one}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("stop returned after %v, before the timeout", el)
	}
	ins, _ := f.svc.ContainerInspect(ctx, id, false)
	if ins.State.ExitCode != 137 || ins.State.Running {
		t.Fatalf("after stop: %+v", ins.State)
	}
	if err := f.svc.ContainerKill(ctx, id, ""); err == nil || !strings.Contains(err.Error(), "is not running") {
		t.Fatalf("kill of a stopped container: %v", err)
	}
	if err := f.svc.ContainerRemove(ctx, id, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ContainerInspect(ctx, id, false); !errdefs.NotFound(err) {
		t.Fatalf("inspect after rm: %v", err)
	}
	if _, err := os.Stat(f.svc.containerDir(id)); !os.IsNotExist(err) {
		t.Fatalf("container dir left: %v", err)
	}
}

func TestExecAndNameConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.create("web", "sleep", "1000")
	if _, err := f.svc.ContainerCreate(ctx, CreateOptions{Name: "web", Config: &container.Config{Image: "busybox"}}); !errdefs.Conflict(err) || !strings.Contains(err.Error(), `The container name "/web" is already in use`) {
		t.Fatalf("name clash: %v", err)
	}
	if err := f.svc.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	xid, err := f.svc.ExecCreate(ctx, "web", container.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo out; exit 7"}, AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := f.svc.ExecStart(ctx, xid, ExecStartOptions{Streams: AttachStreams{Stdout: &out}}); err != nil {
		t.Fatal(err)
	}
	ins, _ := f.svc.ExecInspect(ctx, xid)
	if out.String() != "out\n" || ins.ExitCode == nil || *ins.ExitCode != 7 {
		t.Fatalf("exec: %q %+v", out.String(), ins)
	}
	top, err := f.svc.ContainerTop(ctx, id, "")
	if err != nil || len(top.Processes) != 1 || !strings.Contains(strings.Join(top.Processes[0], " "), "sleep 1000") {
		t.Fatalf("top: %+v %v", top, err)
	}
}

func TestMissingCommandIs127(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.create("", "/no/such/binary")
	err := f.svc.ContainerStart(ctx, id)
	if code, ok := task.ExecFailureCode(err); !ok || code != 127 {
		t.Fatalf("start error %v (code %d)", err, code)
	}
	ins, _ := f.svc.ContainerInspect(ctx, id, false)
	if ins.State.Status != "created" || ins.State.ExitCode != 127 {
		t.Fatalf("state after failed start: %+v", ins.State)
	}
	if mounted(f.svc.rootfs(id)) {
		t.Fatal("rootfs left mounted after a failed start")
	}
}

func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(b), " "+dir+" ")
}

func TestDiffAndRestartPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	resp, err := f.svc.ContainerCreate(ctx, CreateOptions{Config: &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "echo x > /hello.txt; rm /etc/group; exit 1"}},
		HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ContainerStart(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ins, _ := f.svc.ContainerInspect(ctx, resp.ID, false)
		if ins.RestartCount == 2 && ins.State.Status == "exited" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarts: %d, state %s", ins.RestartCount, ins.State.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	changes, err := f.svc.ContainerChanges(ctx, resp.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]container.ChangeType{}
	for _, c := range changes {
		got[c.Path] = c.Kind
	}
	if got["/hello.txt"] != container.ChangeAdd || got["/etc/group"] != container.ChangeDelete || got["/etc"] != container.ChangeModify {
		t.Fatalf("changes: %+v", changes)
	}
}

package task

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// probeRuntime creates and deletes a container with bin, returning the
// runtime's error when this host cannot run containers with it.
func probeRuntime(t *testing.T, bin string) error {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		return err
	}
	rt := newRuntime(t, bin)
	bundle, id := newBundle(t, bundleSpec{args: []string{"true"}})
	ctx := testCtx(t)
	if err := rt.Create(ctx, id, bundle, CreateOpts{}); err != nil {
		return err
	}
	return rt.Delete(ctx, id, true)
}

// runtimesUnderTest returns the runtimes to test with; crun only where the
// host lets it run a container, else the reason is crun's own message.
func runtimesUnderTest(t *testing.T) map[string]string {
	out := map[string]string{"runc": RuncPath}
	if err := probeRuntime(t, CrunPath); err != nil {
		t.Run("crun", func(t *testing.T) { t.Skipf("crun cannot run containers here: %v", err) })
		return out
	}
	out["crun"] = CrunPath
	return out
}

func TestRuntimeLifecycle(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	bundle, id := newBundle(t, bundleSpec{args: []string{"sleep", "100"}})
	ctx := testCtx(t)
	if err := rt.Create(ctx, id, bundle, CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	st, err := rt.State(ctx, id)
	if err != nil || st.Status != StatusCreated || st.Pid <= 0 || st.Bundle != bundle || st.ID != id {
		t.Fatalf("state after create: %+v, %v", st, err)
	}
	if err := rt.Create(ctx, id, bundle, CreateOpts{}); !errdefs.AlreadyExists(err) {
		t.Fatalf("second create: %v, want already exists", err)
	}
	list, err := rt.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	pids, err := rt.Ps(ctx, id)
	if err != nil || !slices.Contains(pids, st.Pid) {
		t.Fatalf("ps: %v, %v; want %d among them", pids, err, st.Pid)
	}
	// A foreground exec exits with its process's status, not a runtime error.
	var exitErr *exec.ExitError
	err = rt.Exec(ctx, id, execProcess("sh", "-c", "exit 4"), ExecOpts{})
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 4 {
		t.Fatalf("exec exit 4: %v", err)
	}
	err = rt.Exec(ctx, id, execProcess("/no/such"), ExecOpts{})
	if code, ok := ExecFailureCode(err); !ok || code != 127 {
		t.Fatalf("exec of a missing binary: %v", err)
	}
	if err := rt.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st, err := rt.State(ctx, id); err != nil || st.Status != StatusPaused {
		t.Fatalf("state after pause: %+v, %v", st, err)
	}
	if err := rt.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := rt.Kill(ctx, id, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the container to stop", 5*time.Second, func() bool {
		st, err := rt.State(ctx, id)
		return err == nil && st.Status == StatusStopped
	})
	if err := rt.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.State(ctx, id); !errdefs.NotFound(err) {
		t.Fatalf("state after delete: %v, want not found", err)
	}
}

func TestRuntimeErrors(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	ctx := testCtx(t)
	cases := []struct {
		name string
		call func() error
		kind error
	}{
		{"start-unknown", func() error { return rt.Start(ctx, "berth-no-such") }, errdefs.ErrNotFound},
		{"kill-unknown", func() error { return rt.Kill(ctx, "berth-no-such", syscall.SIGTERM, false) }, errdefs.ErrNotFound},
		{"missing-runtime", func() error {
			return NewRuntime("/no/such/runc", t.TempDir()).Start(ctx, "x")
		}, errdefs.ErrNotFound},
	}
	for _, tc := range cases {
		if err := tc.call(); !errors.Is(err, tc.kind) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.kind)
		}
	}
}

// TestRuntimeHostProblems checks that the two known host problems come
// back as failed preconditions that say what to do.
func TestRuntimeHostProblems(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	t.Run("rlimit-above-hard", func(t *testing.T) {
		t.Parallel()
		if hasCapSysResource() {
			t.Skip("this process has CAP_SYS_RESOURCE: any rlimit can be raised")
		}
		var host unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &host); err != nil {
			t.Fatal(err)
		}
		rl := specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: host.Max + 1, Soft: host.Max + 1}
		if err := CheckRlimits([]specs.POSIXRlimit{rl}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatalf("CheckRlimits: %v", err)
		}
		rt := newRuntime(t, RuncPath)
		bundle, id := newBundle(t, bundleSpec{args: []string{"true"}, rlimit: &rl})
		err := rt.Create(testCtx(t), id, bundle, CreateOpts{})
		if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
			t.Fatalf("create: %v", err)
		}
	})
	t.Run("crun-hybrid-cgroups", func(t *testing.T) {
		t.Parallel()
		if HybridCgroupProblem() == nil {
			t.Skip("this host is not a cgroup v1 hybrid with controllers on cgroup2")
		}
		if _, err := os.Stat(CrunPath); err != nil {
			t.Skipf("crun: %v", err)
		}
		rt := newRuntime(t, CrunPath)
		bundle, id := newBundle(t, bundleSpec{args: []string{"true"}})
		err := rt.Create(testCtx(t), id, bundle, CreateOpts{})
		var re *RuntimeError
		if !errors.As(err, &re) || !errors.Is(err, errdefs.ErrFailedPrecondition) ||
			!strings.Contains(re.Msg, "hybrid mode") || !strings.Contains(re.Hint, "use runc") {
			t.Fatalf("create: %v", err)
		}
	})
	if err := CheckRlimits([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 64, Soft: 64}}); err != nil {
		t.Fatalf("CheckRlimits of a low limit: %v", err)
	}
	if err := CheckRlimits([]specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}); !errdefs.InvalidArgument(err) && !hasCapSysResource() {
		t.Fatalf("CheckRlimits of an unknown type: %v", err)
	}
}

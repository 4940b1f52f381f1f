package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// utime returns the user CPU ticks of pid from /proc/<pid>/stat.
func utime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name, which may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestShimPauseResume(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	s, opts, err := startShim(t, rt, bundleSpec{args: []string{"sh", "-c", "while :; do :; done"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := s.Resume(ctx); !errdefs.Conflict(err) {
		t.Fatalf("resume of a created container: %v, want conflict", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := s.InitPid()
	waitFor(t, "the loop to use CPU", 5*time.Second, func() bool { return utime(t, pid) > 0 })
	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.State(ctx); err != nil || st.Status != StatusPaused {
		t.Fatalf("state %+v, %v; want paused", st, err)
	}
	if rst, err := rt.State(ctx, opts.ID); err != nil || rst.Status != StatusPaused {
		t.Fatalf("runtime state %+v, %v; want paused", rst, err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err == nil {
		b, err := os.ReadFile("/sys/fs/cgroup/freezer/berth-test/" + opts.ID + "/freezer.state")
		if err != nil || strings.TrimSpace(string(b)) != "FROZEN" {
			t.Fatalf("freezer.state = %q, %v", b, err)
		}
	}
	before := utime(t, pid)
	time.Sleep(300 * time.Millisecond)
	if after := utime(t, pid); after != before {
		t.Fatalf("paused process used CPU: utime %d -> %d", before, after)
	}
	if err := s.Pause(ctx); !errdefs.Conflict(err) {
		t.Fatalf("second pause: %v, want conflict", err)
	}
	if _, err := s.Delete(ctx, false); !errdefs.Conflict(err) {
		t.Fatalf("delete of a paused container without force: %v, want conflict", err)
	}
	if err := s.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the loop to run again", 5*time.Second, func() bool { return utime(t, pid) > before })
	if st, err := s.Delete(ctx, true); err != nil || st.Code != 137 {
		t.Fatalf("forced delete: %+v, %v; want 137", st, err)
	}
}

func TestShimLogRotation(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	const lines, maxSize, maxFiles = 200, 1000, 3
	rt := newRuntime(t, RuncPath)
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo line-$i; i=$((i+1)); done", lines)
	s, opts, err := startShim(t, rt, bundleSpec{args: []string{"sh", "-c", script}}, func(o *ShimOptions) {
		o.Log.MaxSize, o.Log.MaxFiles = maxSize, maxFiles
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Wait(ctx); err != nil || st.Code != 0 {
		t.Fatalf("exit %+v, %v", st, err)
	}
	if _, err := os.Stat(opts.Log.Path + "." + strconv.Itoa(maxFiles)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("more than %d files kept: %v", maxFiles, err)
	}
	var all []logEntry
	for _, p := range []string{opts.Log.Path + ".2", opts.Log.Path + ".1", opts.Log.Path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxSize+100 {
			t.Fatalf("%s is %d bytes, max-size %d", p, fi.Size(), maxSize)
		}
		all = append(all, readLog(t, p)...)
	}
	first := lines - len(all)
	if first <= 0 {
		t.Fatalf("nothing rotated away: %d entries kept", len(all))
	}
	for i, e := range all {
		if want := fmt.Sprintf("line-%d\n", first+i); e.Log != want || e.Stream != "stdout" {
			t.Fatalf("entry %d = %+v, want %q", i, e, want)
		}
	}
}

// daemonRequest is what a test "daemon" process needs to start a shim.
type daemonRequest struct {
	ID, Bundle, StateDir, RuntimeRoot string
}

type daemonReport struct {
	DaemonPid, ShimPid, InitPid int
}

// testDaemon plays a daemon that starts a container through a shim and
// exits without stopping it, as a daemon that crashes or restarts does.
func testDaemon(arg string) int {
	var req daemonRequest
	if err := json.Unmarshal([]byte(arg), &req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	s, err := StartShim(ctx, ShimOptions{Binary: exe, ID: req.ID, Bundle: req.Bundle, StateDir: req.StateDir,
		Runtime: NewRuntime(RuncPath, req.RuntimeRoot)})
	if err == nil {
		err = s.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(daemonReport{DaemonPid: os.Getpid(), ShimPid: s.Pid(), InitPid: s.InitPid()})
	return 0
}

func TestShimReconnect(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	bundle, id := newBundle(t, bundleSpec{args: []string{"sleep", "100"}})
	stateDir := filepath.Join(t.TempDir(), "s")
	arg, _ := json.Marshal(daemonRequest{ID: id, Bundle: bundle, StateDir: stateDir, RuntimeRoot: rt.Root()})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "test-daemon", string(arg)).Output()
	var rep daemonReport
	if err == nil {
		err = json.Unmarshal(out, &rep)
	}
	if err != nil {
		t.Fatalf("test daemon: %v: %s", err, out)
	}
	// The daemon is gone; only its shim and the container remain.
	t.Cleanup(func() { _ = unix.Kill(rep.ShimPid, syscall.SIGKILL) })
	if sid, err := unix.Getsid(rep.ShimPid); err != nil || sid != rep.ShimPid {
		t.Fatalf("shim session %d, %v; want its own (%d)", sid, err, rep.ShimPid)
	}
	ctx := testCtx(t)
	again, err := Connect(ctx, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := again.State(ctx)
	if err != nil || st.Status != StatusRunning || st.Pid != rep.InitPid || again.Pid() != rep.ShimPid {
		t.Fatalf("after reconnect: %+v, %v; want init %d of shim %d running", st, err, rep.InitPid, rep.ShimPid)
	}
	if err := again.Kill(ctx, syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if ex, err := again.Wait(ctx); err != nil || ex.Code != 137 {
		t.Fatalf("exit %+v, %v", ex, err)
	}
	if _, err := again.Delete(ctx, false); err != nil {
		t.Fatal(err)
	}
	checkShimLog(t, again)
	if _, err := Connect(ctx, stateDir); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("connect after delete: %v, want unavailable", err)
	}
	if _, err := rt.State(ctx, id); !errdefs.NotFound(err) {
		t.Fatalf("runtime still knows the container: %v", err)
	}
}

func TestShimExitWhileDisconnected(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	s, opts, err := startShim(t, rt, bundleSpec{args: []string{"sh", "-c", "sleep 0.2; exit 7"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if _, err := ReadExit(opts.StateDir); !errdefs.NotFound(err) {
		t.Fatalf("exit recorded while running: %v", err)
	}
	var ex ExitStatus
	waitFor(t, "the exit file", 10*time.Second, func() bool {
		ex, err = ReadExit(opts.StateDir)
		return err == nil
	})
	if ex.Code != 7 || ex.FinishedAt.Before(started) {
		t.Fatalf("recorded %+v", ex)
	}
	if matches, _ := filepath.Glob(filepath.Join(opts.StateDir, ".exit.json.*")); len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
	again, err := Connect(ctx, opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := again.State(ctx)
	if err != nil || st.Status != StatusStopped || st.Exit == nil || *st.Exit != ex {
		t.Fatalf("state %+v, %v", st, err)
	}
}

func TestShimMultipleAttachers(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	s, _, err := startShim(t, rt, bundleSpec{args: []string{"sh", "-c", "read x; echo got-$x; echo warn >&2"}},
		func(o *ShimOptions) { o.Stdin = true })
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	var outA, outB, errB syncBuffer
	a, err := s.Attach(ctx, AttachOptions{Stdout: &outA})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Attach(ctx, AttachOptions{Stdin: strings.NewReader("it\n"), Stdout: &outB, Stderr: &errB})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, at := range []*Attachment{a, b} {
		if err := at.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if outA.String() != "got-it\n" || outB.String() != "got-it\n" || errB.String() != "warn\n" {
		t.Fatalf("attacher A %q, B %q / %q", outA.String(), outB.String(), errB.String())
	}
}

// TestShimDelete covers forced deletes of containers that never ran or
// are frozen: both end with the init killed and its exit recorded.
func TestShimDelete(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cases := []struct {
		name  string
		start bool
		pause bool
	}{
		{"created", false, false},
		{"paused", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := newRuntime(t, RuncPath)
			s, opts, err := startShim(t, rt, bundleSpec{args: []string{"sleep", "100"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			if tc.start {
				if err := s.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tc.pause {
				if err := s.Pause(ctx); err != nil {
					t.Fatal(err)
				}
			}
			st, err := s.Delete(ctx, true)
			if err != nil || st.Code != 137 {
				t.Fatalf("delete: %+v, %v; want 137", st, err)
			}
			if rec, err := ReadExit(opts.StateDir); err != nil || rec != st {
				t.Fatalf("recorded %+v, %v", rec, err)
			}
			if _, err := rt.State(ctx, opts.ID); !errdefs.NotFound(err) {
				t.Fatalf("runtime still knows the container: %v", err)
			}
		})
	}
}

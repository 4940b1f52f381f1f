package task

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLaunchedShim: a shim launched ahead reads nothing of its bundle
// until Create (config.json can be written after the launch), and an
// aborted one exits having made nothing.
func TestLaunchedShim(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	bin := RuncPath
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("runc is not installed: %v", err)
	}
	for _, abort := range []bool{false, true} {
		name := map[bool]string{false: "create", true: "abort"}[abort]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rt := newRuntime(t, bin)
			bundle, id := newBundle(t, bundleSpec{args: []string{"true"}})
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(bundle, "config.json")
			later := cfg + ".later"
			if err := os.Rename(cfg, later); err != nil {
				t.Fatal(err)
			}
			opts := ShimOptions{Binary: exe, ID: id, Bundle: bundle, StateDir: filepath.Join(t.TempDir(), "s"), Runtime: rt}
			ctx := testCtx(t)
			p, err := LaunchShim(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			<-p.started
			if p.startErr != nil {
				t.Fatal(p.startErr)
			}
			pid := p.cmd.Process.Pid
			if abort {
				p.Abort()
				waitGone(t, pid)
				if _, err := rt.State(ctx, id); err == nil {
					t.Fatal("an aborted shim created its container")
				}
				if _, err := os.Stat(filepath.Join(opts.StateDir, socketFile)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("an aborted shim left its socket: %v", err)
				}
				return
			}
			if err := os.Rename(later, cfg); err != nil {
				t.Fatal(err)
			}
			s, err := p.Create(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stopShim(s) })
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if st, err := s.Wait(ctx); err != nil || st.Code != 0 {
				t.Fatalf("exit = %+v, %v", st, err)
			}
		})
	}
}

// waitGone waits for process pid to exit (its launcher reaps it).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for unix.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = unix.Kill(pid, syscall.SIGKILL)
			t.Fatalf("shim %d still running after Abort", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

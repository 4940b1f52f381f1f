package task

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkShimTrue times `true` through the shim, from starting the shim
// process to the exit being recorded (Wait returns after exit.json is
// written); deleting the container is outside the timer.
func BenchmarkShimTrue(b *testing.B) {
	requireRoot(b)
	rt := newRuntime(b, RuncPath)
	bundle, id := newBundle(b, bundleSpec{args: []string{"true"}})
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cid := id + "-" + strconv.Itoa(i)
		opts := ShimOptions{Binary: exe, ID: cid, Bundle: bundle, Runtime: rt,
			StateDir: filepath.Join(b.TempDir(), "s"), Log: LogConfig{Path: filepath.Join(bundle, cid+"-json.log")}}
		s, err := StartShim(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if st, err := s.Wait(ctx); err != nil || st.Code != 0 {
			b.Fatalf("exit %+v, %v", st, err)
		}
		b.StopTimer()
		if _, err := s.Delete(ctx, false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkRuncRunTrue is the baseline: `runc run` of the same bundle,
// which also deletes the container when it exits.
func BenchmarkRuncRunTrue(b *testing.B) {
	requireRoot(b)
	rt := newRuntime(b, RuncPath)
	bundle, id := newBundle(b, bundleSpec{args: []string{"true"}})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(RuncPath, "--root", rt.Root(), "run", "--bundle", bundle, id+"-"+strconv.Itoa(i))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("runc run: %v: %s", err, out)
		}
	}
}

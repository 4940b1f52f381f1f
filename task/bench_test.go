package task

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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
	var created, started, exited time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		cid := id + "-" + strconv.Itoa(i)
		opts := ShimOptions{Binary: exe, ID: cid, Bundle: bundle, Runtime: rt,
			StateDir: filepath.Join(b.TempDir(), "s"), Log: LogConfig{Path: filepath.Join(bundle, cid+"-json.log")}}
		s, err := StartShim(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if st, err := s.Wait(ctx); err != nil || st.Code != 0 {
			b.Fatalf("exit %+v, %v", st, err)
		}
		b.StopTimer()
		created, started, exited = created+t1.Sub(t0), started+t2.Sub(t1), exited+time.Since(t2)
		if _, err := s.Delete(ctx, false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(b.N) * float64(time.Millisecond)
	b.ReportMetric(float64(created)/n, "ms-create")
	b.ReportMetric(float64(started)/n, "ms-start")
	b.ReportMetric(float64(exited)/n, "ms-exit")
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

// BenchmarkRuncCreateStart splits the shim's two runtime calls from the
// shim itself: runc create then runc start of the same bundle through
// Runtime, without a shim (the exit is not waited for).
func BenchmarkRuncCreateStart(b *testing.B) {
	requireRoot(b)
	rt := newRuntime(b, RuncPath)
	bundle, id := newBundle(b, bundleSpec{args: []string{"true"}})
	ctx := context.Background()
	var created time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cid := id + "-" + strconv.Itoa(i)
		t0 := time.Now()
		if err := rt.Create(ctx, cid, bundle, CreateOpts{}); err != nil {
			b.Fatal(err)
		}
		created += time.Since(t0)
		if err := rt.Start(ctx, cid); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := rt.Delete(ctx, cid, true); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(created)/float64(b.N)/float64(time.Millisecond), "ms-create")
}

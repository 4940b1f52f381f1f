package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/testutil"
)

// startRounds is how many times each system starts a container: the
// median of many, since one start is well under a tenth of a second.
const startRounds = 30

const startWorkload = "container start: run --rm busybox true"

// BenchmarkContainerStart times `run --rm busybox true` (the CLI process,
// from exec to exit: create, start, attach, wait, remove) on berth and each
// peer engine, alternated in one loop, beside the floor: the raw OCI
// runtimes running the same busybox in a prepared bundle (`runc run`,
// `crun run`), which is what is left when no engine is in the way.
func BenchmarkContainerStart(b *testing.B) {
	es := startEngines(b)
	raws, rawSkips := rawRuntimes(b)
	type system struct {
		name  string
		floor bool
		run   func(i int) float64
	}
	var systems []system
	for _, e := range es.all {
		systems = append(systems, system{name: e.name, run: func(int) float64 {
			return e.timed(b, "run", "--rm", busyboxImage, "true")
		}})
	}
	for _, r := range raws {
		systems = append(systems, system{name: r.system(), floor: true, run: func(i int) float64 { return r.timed(b, i) }})
	}
	for i, s := range systems { // warm caches: binaries, image, cgroups
		s.run(-1 - i)
		s.run(-100 - i)
	}
	for range b.N {
		runs := alternate(startRounds, len(systems), func(i int) float64 { return systems[i].run(i) })
		results := make(map[string]Result)
		for i, s := range systems {
			results[s.name] = Result{Workload: startWorkload, System: s.name, Floor: s.floor, Runs: runs[i]}
		}
		for i, s := range systems {
			r := results[s.name]
			if i == 0 {
				r.Note = startTarget(r, results["runc run (bundle)"], results["docker"])
			}
			record(b, r)
		}
	}
	es.recordSkips(b, startWorkload)
	for name, why := range rawSkips {
		record(b, Result{Workload: startWorkload, System: name + " run (bundle)", Floor: true, Skipped: why})
	}
}

// startTarget says whether berth's median start meets issue 3's target:
// under twice the raw runtime's and under half of docker's.
func startTarget(berth, runc, docker Result) string {
	check := func(limit float64, what string) string {
		verdict := "met"
		if berth.Median() >= limit {
			verdict = "not met"
		}
		return fmt.Sprintf("under %s (%.3f s): %s", what, limit, verdict)
	}
	var parts []string
	if len(runc.Runs) > 0 {
		parts = append(parts, check(2*runc.Median(), "2× runc run"))
	}
	if len(docker.Runs) > 0 {
		parts = append(parts, check(docker.Median()/2, "½ docker"))
	}
	if len(parts) == 0 {
		return ""
	}
	return "target " + strings.Join(parts, "; ")
}

// rawRuntime is an OCI runtime CLI with a bundle of the busybox fixture
// whose process is `true`, and a state root of its own.
type rawRuntime struct {
	name, bin, bundle, state string
	seq                      int
}

func (r *rawRuntime) system() string { return r.name + " run (bundle)" }

func (r *rawRuntime) command(id string) *exec.Cmd {
	return exec.Command(r.bin, "--root", r.state, "run", "--bundle", r.bundle, id)
}

// timed runs the bundle once in the foreground; run deletes the container
// when its process exits.
func (r *rawRuntime) timed(b *testing.B, _ int) float64 {
	b.Helper()
	r.seq++
	id := fmt.Sprintf("bbs-%d-%d", os.Getpid(), r.seq)
	cmd := r.command(id)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start).Seconds()
	if err != nil {
		exec.Command(r.bin, "--root", r.state, "delete", "-f", id).Run()
		b.Fatalf("%s run: %v\n%s", r.name, err, out)
	}
	return d
}

// rawRuntimes prepares one bundle and returns the runtimes that can run
// it, and for the others why not (crun 1.8 refuses a hybrid cgroup host
// whose cgroup2 still offers a controller: PEERS.md).
func rawRuntimes(b *testing.B) ([]*rawRuntime, map[string]string) {
	b.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, map[string]string{"runc": "runc is not installed", "crun": "the bundle is made with `runc spec`, and runc is not installed"}
	}
	dir := b.TempDir()
	bundle := filepath.Join(dir, "bundle")
	prepareBundle(b, runc, bundle)
	var ok []*rawRuntime
	skipped := map[string]string{}
	for _, name := range []string{"runc", "crun"} {
		bin, err := exec.LookPath(name)
		if err != nil {
			skipped[name] = name + " is not installed"
			continue
		}
		r := &rawRuntime{name: name, bin: bin, bundle: bundle, state: filepath.Join(dir, name+"-state")}
		id := fmt.Sprintf("bbs-%d-probe", os.Getpid())
		if out, err := r.command(id).CombinedOutput(); err != nil {
			exec.Command(bin, "--root", r.state, "delete", "-f", id).Run()
			skipped[name] = fmt.Sprintf("%s run fails on this host: %s", name, lastLine(string(out), err))
			continue
		}
		ok = append(ok, r)
	}
	return ok, skipped
}

func lastLine(out string, err error) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}

// prepareBundle unpacks the busybox fixture as rootfs and writes the
// runtime's default spec with `true` as the process, no terminal.
func prepareBundle(b *testing.B, runc, bundle string) {
	b.Helper()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("tar", "-C", rootfs, "-xf", testutil.BusyboxTar(b)).CombinedOutput(); err != nil {
		b.Fatalf("unpack busybox: %v\n%s", err, out)
	}
	if out, err := exec.Command(runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v\n%s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	spec.Process.Args = []string{"true"}
	spec.Process.Terminal = false
	raw, err = json.MarshalIndent(&spec, "", "\t")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		b.Fatal(err)
	}
}

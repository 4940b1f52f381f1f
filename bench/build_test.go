package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"berth/testutil"
)

const (
	buildRounds       = 5
	buildPayloadFiles = 1000
	buildPayloadSize  = 19 << 10 // 1,000 files of 19 KiB: the 19 MB COPY of PEERS.md's B6
	buildColdWorkload = "build --no-cache: COPY 19 MB, RUN 48 MB, 5 steps"
	buildWarmWorkload = "build, all steps cached"
)

// buildDockerfile is PEERS.md's B6 image on the busybox fixture: a COPY of
// a directory, a RUN writing 48 MB, a WORKDIR and a CMD.
var buildDockerfile = fmt.Sprintf(`FROM %s
COPY payload /payload
RUN head -c 50331648 /dev/urandom > /payload/blob
WORKDIR /payload
CMD ["/bin/sh", "-c", "ls -l"]
`, busyboxImage)

// BenchmarkBuild times `build` of the same context twice over: with
// --no-cache (every step runs; the image is removed again, untimed, after
// each run) and fully cached (no step runs). docker is driven with
// DOCKER_BUILDKIT=0, the classic builder berth speaks (the docker CLI
// here has no buildx, without which it cannot drive BuildKit); buildah
// runs with --layers, its classic-builder-like step cache, and
// --pull=never.
func BenchmarkBuild(b *testing.B) {
	es := startEngines(b)
	all := slices.Clone(es.all)
	extra := map[string][]string{}
	for _, e := range all {
		if e.name == "docker" {
			e.env = append(e.env, "DOCKER_BUILDKIT=0")
		}
	}
	bh, whyNoBuildah := findBuildah(b)
	if bh != nil {
		all = append(all, bh)
		extra[bh.name] = []string{"--layers", "--pull=never"}
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(buildDockerfile), 0o644); err != nil {
		b.Fatal(err)
	}
	writePayload(b, filepath.Join(dir, "payload"))
	build := func(e *engine, args ...string) []string {
		return append(append(append([]string{"build"}, extra[e.name]...), args...), dir)
	}
	n := 0
	cold := func(i int) float64 {
		e := all[i]
		n++
		tag := fmt.Sprintf("berth-bench/build:cold%d", n)
		t := e.timed(b, build(e, "-q", "--no-cache", "-t", tag)...)
		e.must(b, "rmi", tag)
		return t
	}
	warm := func(i int) float64 {
		return all[i].timed(b, build(all[i], "-q", "-t", "berth-bench/build:warm")...)
	}
	for _, e := range all {
		e.must(b, build(e, "-q", "-t", "berth-bench/build:warm")...)
		b.Cleanup(func() { e.run(nil, "rmi", "berth-bench/build:warm") })
	}
	for range b.N {
		coldRuns := alternate(buildRounds, len(all), cold)
		warmRuns := alternate(buildRounds, len(all), warm)
		for i, e := range all {
			record(b, Result{Workload: buildColdWorkload, System: e.name, Runs: coldRuns[i],
				Note: "whole CLI process; busybox base already stored; the built image removed after each run (untimed)"})
			record(b, Result{Workload: buildWarmWorkload, System: e.name, Runs: warmRuns[i],
				Note: "the same build again: every step from the cache"})
		}
	}
	for _, w := range []string{buildColdWorkload, buildWarmWorkload} {
		es.recordSkips(b, w)
		if bh == nil {
			record(b, Result{Workload: w, System: "buildah", Skipped: whyNoBuildah})
		}
		if slices.ContainsFunc(es.all, func(e *engine) bool { return e.name == "docker" }) {
			record(b, Result{Workload: w, System: "docker (BuildKit)", Skipped: "the docker CLI has no buildx plugin, which BuildKit builds need"})
		}
	}
}

// findBuildah returns buildah on private storage roots, configuration and
// registries (none: short names resolve to local images only) with the
// fixture stored as busyboxImage, or why there is none. buildah has no
// import: the fixture is added to a scratch container and committed.
func findBuildah(b *testing.B) (*engine, string) {
	b.Helper()
	bin, err := exec.LookPath("buildah")
	if err != nil {
		return nil, "buildah is not installed"
	}
	dir, err := os.MkdirTemp("", "bbb-")
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{
		"containers.conf": "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n" +
			"[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
		"registries.conf": "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n",
		"auth.json":       "{}",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	e := &engine{name: "buildah", argv: []string{bin, "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")},
		env: []string{"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"), "TMPDIR=" + dir,
			"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"), "REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json")}}
	b.Cleanup(func() {
		e.run(nil, "rm", "--all")
		e.run(nil, "rmi", "--all", "--force")
		removeTree(b, dir)
	})
	ctr, err := e.run(nil, "from", "--pull=never", "scratch")
	if err != nil {
		return nil, fmt.Sprintf("buildah does not run: %v", err)
	}
	ctr = strings.TrimSpace(ctr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := e.command(ctx, "--version").Output(); err == nil {
		b.Logf("%s on %s", strings.TrimSpace(string(out)), dir)
	}
	for _, args := range [][]string{{"add", ctr, testutil.BusyboxTar(b), "/"}, {"config", "--cmd", "sh", ctr},
		{"commit", "-q", "--rm", ctr, busyboxImage}} {
		e.must(b, args...)
	}
	return e, ""
}

// writePayload fills dir with buildPayloadFiles random files.
func writePayload(b *testing.B, dir string) {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(6, 6))
	buf := make([]byte, buildPayloadSize)
	for i := range buildPayloadFiles {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

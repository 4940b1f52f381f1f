package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
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
// DOCKER_BUILDKIT=0, the classic builder berth speaks; podman runs buildah.
func BenchmarkBuild(b *testing.B) {
	es := startEngines(b)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(buildDockerfile), 0o644); err != nil {
		b.Fatal(err)
	}
	writePayload(b, filepath.Join(dir, "payload"))
	for _, e := range es.all {
		if e.name == "docker" {
			e.env = append(e.env, "DOCKER_BUILDKIT=0")
		}
	}
	n := 0
	cold := func(i int) float64 {
		e := es.all[i]
		n++
		tag := fmt.Sprintf("berth-bench/build:cold%d", n)
		t := e.timed(b, "build", "-q", "--no-cache", "-t", tag, dir)
		e.must(b, "rmi", tag)
		return t
	}
	warm := func(i int) float64 {
		return es.all[i].timed(b, "build", "-q", "-t", "berth-bench/build:warm", dir)
	}
	for _, e := range es.all {
		e.must(b, "build", "-q", "-t", "berth-bench/build:warm", dir)
		b.Cleanup(func() { e.run(nil, "rmi", "berth-bench/build:warm") })
	}
	for range b.N {
		coldRuns := alternate(buildRounds, len(es.all), cold)
		warmRuns := alternate(buildRounds, len(es.all), warm)
		for i, e := range es.all {
			record(b, Result{Workload: buildColdWorkload, System: e.name, Runs: coldRuns[i],
				Note: "whole CLI process; busybox base already stored; the built image removed after each run (untimed)"})
			record(b, Result{Workload: buildWarmWorkload, System: e.name, Runs: warmRuns[i],
				Note: "the same build again: every step from the cache"})
		}
	}
	es.recordSkips(b, buildColdWorkload)
	es.recordSkips(b, buildWarmWorkload)
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

// Package bench holds berth's benchmarks and the result format they share.
// `make bench` (scripts/bench.sh) runs every benchmark of this directory
// once (-benchtime 1x: each repeats its own runs and reports the median and
// range) and then bench/report turns the results into docs/benchmarks.md
// and docs/benchmarks.png. Timings are results, never assertions.
//
// Every benchmark measures berth through its real CLI binary against a real
// daemon (a whole-process timer, as a user waits for it) and, in the same
// run, each peer that is installed: docker (a dockerd answering on
// $DOCKER_HOST or /var/run/docker.sock), podman (private storage roots),
// the raw OCI runtimes runc and crun, the CNCF registry
// (/usr/bin/docker-registry). Nothing is installed; a missing peer is
// recorded as skipped with the reason.
//
// # Result format
//
// A benchmark appends one JSON object a line (a [Result]) to the file named
// by $BERTH_BENCH_RESULTS, through [Record]:
//
//	{"workload":"container start: run --rm busybox true","system":"berth","runs":[0.091,0.088,...]}
//	{"workload":"container start: run --rm busybox true","system":"runc run (bundle)","floor":true,"runs":[...]}
//	{"workload":"container start: run --rm busybox true","system":"crun run (bundle)","skipped":"crun: ..."}
//
// Runs are in seconds unless Unit says otherwise; a unit ending in "/s" is a
// rate, where more is better. A floor line is what the hardware or the
// layer below allows (the raw runtime, a loopback copy, decompression on
// this CPU): the report shows how close berth is to it.
package bench

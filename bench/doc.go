// Package bench holds berth's benchmarks and the result format they share.
// `make bench` (scripts/bench.sh) runs every benchmark of this directory
// and of registry/bench, each in a process of its own and once
// (-benchtime 1x: each repeats its own runs, alternating the systems, and
// reports the median and range), and then bench/report turns the results
// into docs/benchmarks.md and docs/benchmarks.png. Timings are results,
// never assertions.
//
// Every engine benchmark measures berth through its real CLI binary against
// a daemon of its own (private roots, its own bridge) with a whole-process
// timer, as a user waits for it, and in the same loop each peer that is
// installed: docker (a dockerd answering on $DOCKER_HOST or
// /var/run/docker.sock; scripts/bench.sh starts a private one for the run
// when dockerd is installed but not running), podman (private storage roots
// and containers.conf), buildah, the raw OCI runtimes runc and crun, the
// CNCF registry (/usr/bin/docker-registry). Nothing is installed and nothing
// is pulled: every engine gets the fixtures (built offline from
// busybox-static, host files and seeded random data) by import or load. A
// missing peer is recorded as skipped with the reason.
//
// The workloads: container start (floor: the raw runtimes), a detached web
// server's first answer (floor: the same httpd on the host), commit, save
// and load (floor: copying the archive), push and pull through a loopback
// registry (floors: upload, download, gzip and gunzip of the layers), cold
// and cached builds, copy-on-write of a 1 GiB image file (floor: copying
// it), berth's storage drivers side by side, many clients pulling at once
// (floor: the same GETs from memory), and the loopback floors of
// registry/bench's throughput and manifest figures.
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
// this CPU): the report shows how close berth is to it. How each system was
// set up (storage driver, runtime, roots) goes, one line each, to the file
// named by $BERTH_BENCH_PEERS, which the report lists once.
package bench

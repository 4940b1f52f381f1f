#!/usr/bin/env bash
# `make bench`: every benchmark of bench/ (berth beside docker, podman, runc,
# crun when they are installed; nothing is installed) and of registry/bench
# (berth's registry beside the CNCF registry), then the report:
# docs/benchmarks.md and docs/benchmarks.png, from this run's figures only.
#
#   BENCH=regexp     run only the benchmarks matching it, case-insensitively
#                    (bench/'s names, and registry/bench's prefixed
#                    "registry/bench/": BENCH=registry runs those)
#   BERTH_BENCH_OUT  keep the raw outputs there (default: a new temp dir)
#   BERTH_COMMIT     the commit the report names (default: git rev-parse)
#
# docker: when the docker CLI and dockerd are installed but no daemon
# answers on $DOCKER_HOST (or /var/run/docker.sock), this script starts a
# dockerd of its own for the run, on private roots under a temp dir (data,
# exec root, socket, pidfile, its managed containerd), on a bridge it
# creates (bbd<pid>, 10.213.<n>.0/24), with iptables, masquerading and
# ip_forward left alone; it stops that dockerd by its PID and removes the
# bridge and the temp dir afterwards. Images come only from the offline
# fixtures: nothing is pulled from docker.io.
#
# Each benchmark runs in a process of its own, timed, so that one failure
# costs only its own figures; a failed one runs once more. The report lists
# each benchmark's time and what failed; the script then exits non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
out=${BERTH_BENCH_OUT:-$(mktemp -d /tmp/berth-bench.XXXXXX)}
mkdir -p "$out"
: >"$out/results.jsonl" >"$out/timings.txt" >"$out/peers.txt"
export BERTH_BENCH_RESULTS=$out/results.jsonl BERTH_BENCH_PEERS=$out/peers.txt
export BERTH_BIN=$PWD/bin/berth
[ -x "$BERTH_BIN" ] || { echo "bench: $BERTH_BIN missing: run make build" >&2; exit 1; }
start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
status=0

# --- a private dockerd when none runs -------------------------------------
dockerd_pid= dockerd_dir= dockerd_bridge=
stop_dockerd() {
	[ -n "$dockerd_pid" ] || return 0
	kill -TERM "$dockerd_pid" 2>/dev/null
	for _ in $(seq 1 40); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
	kill -KILL "$dockerd_pid" 2>/dev/null
	wait "$dockerd_pid" 2>/dev/null
	# What a killed dockerd left mounted (its containers' rootfs, netns).
	grep -o " $dockerd_dir/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	ip link del "$dockerd_bridge" 2>/dev/null
	rm -rf "$dockerd_dir"
	echo "bench: stopped the private dockerd (pid $dockerd_pid)"
	dockerd_pid=
}
trap stop_dockerd EXIT
trap 'exit 130' INT TERM

docker_answers() { timeout 10 docker ${1:+-H "$1"} version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_dockerd() {
	command -v docker >/dev/null || { echo "docker: the docker CLI is not installed" >>"$out/peers.txt"; return; }
	if docker_answers "${DOCKER_HOST:-}"; then
		echo "docker: a running dockerd (${DOCKER_HOST:-unix:///var/run/docker.sock}), storage driver $(docker info --format '{{.Driver}}' 2>/dev/null)" >>"$out/peers.txt"
		return
	fi
	command -v dockerd >/dev/null || { echo "docker: no dockerd answers and dockerd is not installed" >>"$out/peers.txt"; return; }
	dockerd_dir=$(mktemp -d /tmp/bbd.XXXXXX) # short: unix socket paths are limited
	dockerd_bridge=bbd$(($$ % 100000))
	local net=10.213.$(($$ % 200)) sock=unix://$dockerd_dir/docker.sock
	ip link add name "$dockerd_bridge" type bridge && ip addr add "$net.1/24" dev "$dockerd_bridge" && ip link set "$dockerd_bridge" up || {
		echo "docker: could not create the bridge $dockerd_bridge for a private dockerd" >>"$out/peers.txt"; return; }
	setsid dockerd --data-root "$dockerd_dir/data" --exec-root "$dockerd_dir/exec" --pidfile "$dockerd_dir/docker.pid" \
		-H "$sock" --bridge "$dockerd_bridge" --storage-driver overlay2 \
		--iptables=false --ip6tables=false --ip-masq=false --ip-forward=false >"$out/dockerd.log" 2>&1 </dev/null &
	dockerd_pid=$!
	for _ in $(seq 1 60); do docker_answers "$sock" && break; sleep 0.5; done
	if ! docker_answers "$sock"; then
		echo "docker: the private dockerd did not answer in 30 s (see $out/dockerd.log)" >>"$out/peers.txt"
		stop_dockerd
		return
	fi
	export DOCKER_HOST=$sock
	echo "docker: a dockerd started by make bench for this run on private roots (data root, exec root, socket, pidfile in a temp dir), storage driver $(docker info --format '{{.Driver}}' 2>/dev/null), its own bridge $dockerd_bridge ($net.0/24), --iptables=false --ip-masq=false --ip-forward=false (published ports through docker-proxy); stopped after the run" >>"$out/peers.txt"
	echo "bench: started a private dockerd (pid $dockerd_pid) on $sock"
}
start_dockerd

# --- the benchmarks, one process each --------------------------------------
$go test -c -o "$out/bench.test" ./bench || exit 1
reg_ok=1
$go test -c -o "$out/registry.test" ./registry/bench || reg_ok=0
mkdir -p "$out/raw"
gobench=

# run_bench NAME DIR CMD...: runs one benchmark process in its package's
# directory (as go test would), and once more if it fails (a peer's or the
# machine's hiccup should not cost a whole workload; the report says so).
# Only the last attempt's output and results count; every attempt's time,
# and the load average when it started, go to timings.txt.
run_bench() {
	local name=$1 dir=$2 t0 rc secs attempt base load
	shift 2
	base=$out/raw/$(tr -c 'A-Za-z0-9\n' _ <<<"$name")
	for attempt in 1 2; do
		rm -f "$base.$attempt.jsonl" # Record appends
		load=$(cut -d' ' -f1 /proc/loadavg)
		t0=$(date +%s)
		(cd "$dir" && BERTH_BENCH_RESULTS=$base.$attempt.jsonl "$@") 2>&1 | tee "$base.$attempt.txt"
		rc=${PIPESTATUS[0]}
		secs=$(($(date +%s) - t0))
		printf '%s\t%d\t%d\t%d\t%s\n' "$name" "$secs" "$rc" "$attempt" "$load" >>"$out/timings.txt"
		printf 'bench: %s took %d min %d s%s\n' "$name" $((secs / 60)) $((secs % 60)) "$([ "$rc" -eq 0 ] || echo ", FAILED (exit $rc)")"
		[ "$rc" -eq 0 ] && break
	done
	[ -f "$base.$attempt.jsonl" ] && cat "$base.$attempt.jsonl" >>"$out/results.jsonl"
	gobench=$gobench${gobench:+,}$base.$attempt.txt
	[ "$rc" -eq 0 ] || status=1
}

# BENCH matches either package's benchmark names, case-insensitively:
# BENCH=registry runs registry/bench and the registry floors.
filter=${BENCH:-.}
for name in $("$out/bench.test" -test.list '^Benchmark' | grep -iE "$filter"); do
	# Most benchmarks repeat their own runs (alternating the systems), so
	# once each; the storage steps repeat through b.N.
	n=1x
	[ "$name" = BenchmarkStorage ] && n=3x
	run_bench "$name" bench "$out/bench.test" -test.run '^$' -test.bench "^$name\$" -test.benchtime "$n" -test.timeout 30m
done
if [ "$reg_ok" -eq 1 ]; then
	for name in $("$out/registry.test" -test.list '^Benchmark'); do
		grep -qiE "$filter" <<<"registry/bench/$name" || continue
		run_bench "registry/bench $name" registry/bench "$out/registry.test" -test.run '^$' -test.bench "^$name\$" \
			-test.count 5 -test.benchtime 1s -test.timeout 20m
	done
elif [ -z "${BENCH:-}" ] || grep -qiE "$filter" <<<"registry/bench"; then
	printf '%s\t0\t2\t1\t%s\n' "registry/bench (did not compile)" "$(cut -d' ' -f1 /proc/loadavg)" >>"$out/timings.txt"
	status=1
fi

secs=$(($(date +%s) - start))
elapsed="$((secs / 60)) min $((secs % 60)) s"
# A whole run writes docs/ even when a benchmark failed: the report names
# what is missing. A subset goes next to the raw outputs.
md=docs/benchmarks.md png=docs/benchmarks.png
if [ -n "${BENCH:-}" ]; then
	md=$out/benchmarks.md png=$out/benchmarks.png
fi
commit=${BERTH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
# While the private dockerd still runs: the report asks it for its version.
$go run ./bench/report -commit "$commit" -results "$out/results.jsonl" -gobench "$gobench" \
	-timings "$out/timings.txt" -peers "$out/peers.txt" -load "$load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end" \
	-md "$md" -png "$png" -elapsed "$elapsed" || status=1
stop_dockerd
echo "bench: the whole run took $elapsed; report $md, chart $png; raw outputs in $out"
[ "$status" -eq 0 ] || echo "bench: a benchmark failed (see $out/timings.txt and $out/raw/); the report lists what is missing" >&2
exit "$status"

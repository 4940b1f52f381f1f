#!/usr/bin/env bash
# `make bench`: every benchmark of bench/ (berth beside docker, podman, runc,
# crun when they are installed; nothing is installed) and of registry/bench
# (berth's registry beside the CNCF registry), then the report:
# docs/benchmarks.md and docs/benchmarks.png, from this run's figures only.
#
#   BENCH=regexp     run only the benchmarks of bench/ matching it
#   BERTH_BENCH_OUT  keep the raw outputs there (default: a new temp dir)
#   BERTH_COMMIT     the commit the report names (default: git rev-parse)
#
# A failed benchmark leaves docs/ alone: the partial report goes next to the
# raw outputs instead, and the script exits non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
out=${BERTH_BENCH_OUT:-$(mktemp -d /tmp/berth-bench.XXXXXX)}
mkdir -p "$out"
: >"$out/results.jsonl"
export BERTH_BENCH_RESULTS=$out/results.jsonl
export BERTH_BIN=$PWD/bin/berth
[ -x "$BERTH_BIN" ] || { echo "bench: $BERTH_BIN missing: run make build" >&2; exit 1; }
start=$(date +%s)
status=0

gotest() { $go test -run '^$' "$@" 2>&1; }
: >"$out/registry.txt"
if [ -n "${BENCH:-}" ]; then
	gotest -bench "$BENCH" -benchtime 1x -timeout 60m ./bench/... | tee "$out/bench.txt" || status=1
else
	# Most benchmarks repeat their own runs (alternating the systems), so
	# once each; the storage steps repeat through b.N.
	gotest -bench . -skip '^BenchmarkStorage$' -benchtime 1x -timeout 60m ./bench/... | tee "$out/bench.txt" || status=1
	gotest -bench '^BenchmarkStorage$' -benchtime 3x -timeout 30m ./bench/ | tee -a "$out/bench.txt" || status=1
	gotest -bench . -count 5 -benchtime 1s -timeout 20m ./registry/bench/ | tee "$out/registry.txt" || status=1
fi

secs=$(($(date +%s) - start))
elapsed="$((secs / 60)) min $((secs % 60)) s"
md=docs/benchmarks.md png=docs/benchmarks.png
if [ "$status" -ne 0 ] || [ -n "${BENCH:-}" ]; then
	md=$out/benchmarks.md png=$out/benchmarks.png
fi
commit=${BERTH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
$go run ./bench/report -commit "$commit" -results "$out/results.jsonl" -gobench "$out/bench.txt,$out/registry.txt" \
	-md "$md" -png "$png" -elapsed "$elapsed" || status=1
echo "bench: $elapsed; report $md, chart $png; raw outputs in $out"
[ "$status" -eq 0 ] || echo "bench: a benchmark failed (see $out/*.txt); docs/ left as it was" >&2
exit "$status"

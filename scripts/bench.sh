#!/usr/bin/env bash
# Runs the benchmark: the release `rosetta-bench` starts a fake upstream and the release `rosettad`,
# measures direct vs through rosettad, and prints the results table (see docs/performance.md).
# `make bench` builds both in release mode first. Extra arguments (or $BENCH_ARGS) go to rosetta-bench,
# e.g. `scripts/bench.sh --sequential 500 --throughput-requests 5000`; `--help` lists them.
# The `isolation` scenario starts two more gateways (tenants A and B, each with a cap) and prints B's
# latency alone and while A runs 4x its cap of streams: `scripts/bench.sh --scenario isolation`.
# ROSETTA_BENCH_BIN_DIR=.build/debug runs the debug binaries instead (say so when quoting figures).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir="${ROSETTA_BENCH_BIN_DIR:-.build/release}"
bench="$bin_dir/rosetta-bench"
rosettad="$bin_dir/rosettad"
for binary in "$bench" "$rosettad"; do
    if [[ ! -x "$binary" ]]; then
        echo "bench.sh: $binary is missing; build it with: swift build -c release" >&2
        exit 2
    fi
done

echo "rosetta-bench $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified)'), $(swift --version 2>/dev/null | head -n 1 || echo 'swift version unknown')"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of options split on spaces on purpose
exec "$bench" --rosettad "$rosettad" ${BENCH_ARGS:-} "$@"

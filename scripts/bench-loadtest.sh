#!/usr/bin/env bash
# Benchmarks the Locust load generator against the vLLM simulator: accuracy at 1/16/64 streams and
# the highest streamed request rate one Locust process sustains here. Not a test: prints tables.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-loadtest.sh [--streams 1,16,64] [--rates 25,50,...] [--duration S] [--skip accuracy|capacity]

Starts tools/vllm-sim (TTFT 100 ms, ITL 20 ms) on 127.0.0.1 and runs loadtests/bench.py:
  accuracy  client TTFT/ITL p50 vs the configured values and the simulator's own histograms
  capacity  open-loop rate ladder until the generator's CPU saturates or the numbers drift
Tables go to stdout and loadtests/results/bench-<time>.md; loadtests/results/BENCHMARK.md is the
committed copy. Needs scripts/bootstrap.sh --only sim,python. Takes about 4 minutes.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
need vllm-sim
PY="$CACHE/venv/bin/python"
[ -x "$PY" ] || die "the Python venv is missing; run scripts/bootstrap.sh --only python"
exec "$PY" "$ROOT/loadtests/bench.py" "$@"

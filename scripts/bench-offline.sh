#!/usr/bin/env bash
# Times the offline test suite and sets it next to its floor: the `helm template` calls the suite needs,
# run one after another with nothing else. Goal: the suite within 3x the floor.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/bench-offline.sh [PYTEST ARGS...]

Runs `pytest tests -m "not e2e and not load"` once with every helm template call logged, then replays
each distinct call alone, sequentially, and prints:
  suite wall time, floor (sum of the bare helm template calls), ratio, helm calls (distinct / total)
Extra arguments go to pytest. Tools come from $LLM_STACK_CACHE/bin (scripts/bootstrap.sh).
EOF
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
need helm
PY="$CACHE/venv/bin/python"
[ -x "$PY" ] || die "the Python venv is missing; run scripts/bootstrap.sh --only python"

log_file=$(mktemp -t llm-stack-helm-timing.XXXXXX)
trap 'rm -f "$log_file"' EXIT

cd "$ROOT"
start=$(date +%s.%N)
set +e
LLM_STACK_HELM_TIMING="$log_file" "$PY" -m pytest tests -m "not e2e and not load" -q -p no:cacheprovider "$@"
rc=$?
set -e
end=$(date +%s.%N)

"$PY" - "$log_file" "$start" "$end" "$rc" <<'EOF'
import json, subprocess, sys, time
log, start, end, rc = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
calls = [json.loads(line) for line in open(log)]
distinct = list(dict.fromkeys(tuple(c["args"]) for c in calls))
floor = 0.0
for args in distinct:
    t = time.monotonic()
    subprocess.run(args, capture_output=True)
    floor += time.monotonic() - t
wall = end - start
print()
print(f"offline suite wall time : {wall:7.2f} s   (pytest exit {rc})")
print(f"floor (bare helm calls) : {floor:7.2f} s   ({len(distinct)} distinct of {len(calls)} helm template calls)")
print(f"ratio                   : {wall / floor if floor else float('inf'):7.2f} x   (goal: within 3x)")
EOF
exit "$rc"

#!/usr/bin/env bash
# The whole test suite from a fresh machine: pinned tools, the local cluster, then `pytest tests/`.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not e2e and not load" for the offline part).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
case "${1:-}" in -h|--help) echo "Usage: scripts/test.sh [PYTEST ARGS...]"; exit 0 ;; esac
cd "$ROOT"
"$ROOT/scripts/bootstrap.sh"
export KUBECONFIG=${LLM_STACK_KUBECONFIG:-$CACHE/kubeconfig}
# The e2e tests need the cluster; a cluster that cannot start fails those tests (never skips them).
"$ROOT/scripts/cluster-up.sh" || log "cluster-up failed: the e2e tests will fail and say why"
mkdir -p "$ROOT/reports"
exec "$CACHE/venv/bin/python" -m pytest tests/ --junitxml="$ROOT/reports/junit.xml" "$@"

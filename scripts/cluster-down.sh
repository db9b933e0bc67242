#!/usr/bin/env bash
# Tears down the local cluster that scripts/cluster-up.sh started, and removes its kubeconfig.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
NAME=${CLUSTER_NAME:-llm-stack}
RUNTIME=${CLUSTER_RUNTIME:-kwok}
case "${1:-}" in
  -h|--help) echo "Usage: scripts/cluster-down.sh   (CLUSTER_RUNTIME=kwok|kind, CLUSTER_NAME=$NAME)"; exit 0 ;;
esac
KUBECONFIG_OUT=${LLM_STACK_KUBECONFIG:-$CACHE/kubeconfig}
case "$RUNTIME" in
  kwok) need kwokctl
        if kwokctl get clusters 2>/dev/null | grep -qx "$NAME"; then
          kwokctl delete cluster --name "$NAME" --kubeconfig "$KUBECONFIG_OUT" >/dev/null
          log "cluster '$NAME' deleted"
        else log "no kwok cluster '$NAME'"; fi ;;
  kind) need kind; kind delete cluster --name "$NAME" --kubeconfig "$KUBECONFIG_OUT" ;;
  *) die "CLUSTER_RUNTIME must be kwok or kind, not '$RUNTIME'" ;;
esac
rm -f "$KUBECONFIG_OUT"

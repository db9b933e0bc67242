#!/usr/bin/env bash
# One command from a fresh machine to a running stack: pinned tools, the local GPU-like cluster, and
# `helm install llm ./charts/llm-stack -f values/local.yaml`, then a readable status.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
case "${1:-}" in
  -h|--help) echo "Usage: scripts/up.sh   (env: CLUSTER_RUNTIME=kwok|kind, RELEASE=llm, NAMESPACE=llm, VALUES=values/local.yaml)"; exit 0 ;;
esac
RELEASE=${RELEASE:-llm}
NAMESPACE=${NAMESPACE:-llm}
VALUES=${VALUES:-$ROOT/values/local.yaml}

"$ROOT/scripts/bootstrap.sh"
"$ROOT/scripts/cluster-up.sh"
export KUBECONFIG=${LLM_STACK_KUBECONFIG:-$CACHE/kubeconfig}
if [ "${CLUSTER_RUNTIME:-kwok}" = kind ]; then "$ROOT/scripts/sim-image.sh" --load-kind; fi

log "helm upgrade --install $RELEASE ./charts/llm-stack -n $NAMESPACE -f ${VALUES#"$ROOT"/}"
helm upgrade --install "$RELEASE" "$ROOT/charts/llm-stack" -n "$NAMESPACE" --create-namespace \
  -f "$VALUES" --wait --timeout 5m
"$ROOT/scripts/status.sh" "$RELEASE" "$NAMESPACE"

#!/usr/bin/env bash
# A status a person can read: what the release installed, what is Ready, where the endpoint is.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
case "${1:-}" in -h|--help) echo "Usage: scripts/status.sh [RELEASE] [NAMESPACE]"; exit 0 ;; esac
RELEASE=${1:-llm}
NAMESPACE=${2:-llm}
export KUBECONFIG=${KUBECONFIG:-$CACHE/kubeconfig}
need helm kubectl
sel="app.kubernetes.io/instance=$RELEASE"
ns=$(kubectl get deploy -A -l "$sel" -o jsonpath='{.items[0].metadata.namespace}' 2>/dev/null || true)
ns=${ns:-$NAMESPACE}
echo
echo "== release $RELEASE (namespace $NAMESPACE, workloads in $ns)"
helm status "$RELEASE" -n "$NAMESPACE" -o json | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("   revision %s, status %s, deployed %s" % (r["version"], r["info"]["status"], r["info"]["last_deployed"][:19]))'
echo
echo "== installed objects"
kubectl get all,pvc,pdb,hpa,scaledobjects,servicemonitors,prometheusrules,httproutes -n "$ns" -l "$sel" 2>/dev/null \
  | sed 's/^/   /' || true
echo
echo "== model servers (Ready / wanted, and the GPU nodes they run on)"
kubectl get deploy -n "$ns" -l "$sel,app.kubernetes.io/name=vllm" \
  -o custom-columns='DEPLOYMENT:.metadata.name,READY:.status.readyReplicas,WANTED:.spec.replicas' | sed 's/^/   /'
kubectl get pods -n "$ns" -l "$sel,app.kubernetes.io/name=vllm" \
  -o custom-columns='POD:.metadata.name,PHASE:.status.phase,NODE:.spec.nodeName' | sed 's/^/   /'
echo
echo "== endpoint"
for svc in $(kubectl get svc -n "$ns" -l "$sel,app.kubernetes.io/name=vllm" -o name | grep -v -- '-metrics$'); do
  echo "   ${svc#service/}: http://${svc#service/}.$ns.svc:8000/v1   (kubectl -n $ns port-forward $svc 8000:8000)"
done
if kubectl get nodes -l type=kwok -o name 2>/dev/null | grep -q .; then
  echo
  echo "   Note: this is a simulated cluster. Pods on KWOK nodes are scheduled, Running and Ready, but run no"
  echo "   containers. To talk to a real OpenAI-compatible server here, run the simulator: vllm-sim --port 8000"
fi

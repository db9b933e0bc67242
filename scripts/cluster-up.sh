#!/usr/bin/env bash
# Brings up a local cluster shaped like a GPU cluster and writes its kubeconfig.
#   default (CLUSTER_RUNTIME=kwok): a real control plane (etcd, kube-apiserver, kube-controller-manager,
#     kube-scheduler built from source) run by kwokctl's binary runtime, with simulated KWOK nodes.
#   CLUSTER_RUNTIME=kind: a kind cluster, for machines that allow privileged containers.
# Both get the same node labels, taints and GPU capacity, and the CRDs that the charts use.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/cluster-up.sh [--gpu-nodes N] [--cpu-nodes N] [--name NAME]

Environment:
  CLUSTER_RUNTIME   kwok (default) or kind
  LLM_STACK_KUBECONFIG  where to write the kubeconfig (default $LLM_STACK_CACHE/kubeconfig)
  KUBE_APISERVER_PORT   fixed API server port for kwok (default: a free port chosen by kwokctl)

Nodes: N GPU nodes (nvidia.com/gpu: 8, label nvidia.com/gpu.product alternating
NVIDIA-A100-SXM4-80GB / NVIDIA-H100-80GB-HBM3, taint nvidia.com/gpu=present:NoSchedule) and CPU nodes,
spread over zones zone-a and zone-b (topology.kubernetes.io/zone). Pods on KWOK nodes run no containers:
KWOK marks them Running and Ready.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"

GPU_NODES=4
CPU_NODES=2
NAME=${CLUSTER_NAME:-llm-stack}
RUNTIME=${CLUSTER_RUNTIME:-kwok}
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu-nodes) GPU_NODES=$2; shift 2 ;;
    --cpu-nodes) CPU_NODES=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
KUBECONFIG_OUT=${LLM_STACK_KUBECONFIG:-$CACHE/kubeconfig}
mkdir -p "$(dirname "$KUBECONFIG_OUT")"
export KUBECONFIG=$KUBECONFIG_OUT

kwok_up() {
  need kwokctl kwok kube-apiserver kube-controller-manager kube-scheduler etcd kubectl
  local ver; ver=$(kube-apiserver --version 2>/dev/null | awk '{print $2}')
  [ "$ver" = "$KUBERNETES_VERSION" ] || die "kube-apiserver reports '$ver', expected $KUBERNETES_VERSION; run scripts/bootstrap.sh"
  if kwokctl get clusters 2>/dev/null | grep -qx "$NAME"; then
    if kubectl --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
      log "cluster '$NAME' is already up"
      return
    fi
    log "cluster '$NAME' exists but does not answer; recreating it"
    kwokctl delete cluster --name "$NAME" --kubeconfig "$KUBECONFIG_OUT" >/dev/null 2>&1 || true
  fi
  local port_args=()
  if [ -n "${KUBE_APISERVER_PORT:-}" ]; then
    if (exec 3<>"/dev/tcp/127.0.0.1/$KUBE_APISERVER_PORT") 2>/dev/null; then
      die "port $KUBE_APISERVER_PORT is taken; free it or unset KUBE_APISERVER_PORT to let kwokctl choose"
    fi
    port_args=(--kube-apiserver-port "$KUBE_APISERVER_PORT")
  fi
  log "starting cluster '$NAME' (kwokctl binary runtime, Kubernetes $KUBERNETES_VERSION)"
  local opts=()
  if command -v metrics-server >/dev/null; then
    opts+=(--enable metrics-server --metrics-server-binary "$(command -v metrics-server)")
  fi
  if ! KWOK_KUBE_VERSION=$KUBERNETES_VERSION kwokctl create cluster --name "$NAME" --runtime binary \
      --kube-apiserver-binary "$(command -v kube-apiserver)" \
      --kube-controller-manager-binary "$(command -v kube-controller-manager)" \
      --kube-scheduler-binary "$(command -v kube-scheduler)" \
      --kwok-controller-binary "$(command -v kwok)" \
      --etcd-binary "$(command -v etcd)" \
      "${opts[@]}" "${port_args[@]}" \
      --kubeconfig "$KUBECONFIG_OUT" --wait 120s --timeout 180s >"$CACHE/cluster-up.log" 2>&1; then
    tail -20 "$CACHE/cluster-up.log" >&2
    die "the API server did not come up (full log: $CACHE/cluster-up.log; component logs: ~/.kwok/clusters/$NAME/logs)"
  fi
}

kind_up() {
  need kind kubectl
  if ! kind get clusters 2>/dev/null | grep -qx "$NAME"; then
    log "starting kind cluster '$NAME' (needs privileged containers; not possible where they are refused)"
    local cfg; cfg=$(mktemp)
    { echo "kind: Cluster"; echo "apiVersion: kind.x-k8s.io/v1alpha4"; echo "nodes:"; echo "- role: control-plane"
      for _ in $(seq 1 $((GPU_NODES + CPU_NODES))); do echo "- role: worker"; done; } > "$cfg"
    kind create cluster --name "$NAME" --config "$cfg" --kubeconfig "$KUBECONFIG_OUT" --wait 180s \
      || die "kind could not start the cluster (privileged containers refused? use CLUSTER_RUNTIME=kwok)"
  fi
}

# node_manifest NAME ZONE GPU_PRODUCT|"": a KWOK Node, or (kind) the labels/taints applied to a real one
node_manifest() {
  local name=$1 zone=$2 product=$3
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    # where metrics-server reads this node's resource usage (KWOK simulates it from pod annotations)
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/$name/metrics/resource
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    topology.kubernetes.io/zone: $zone
    topology.kubernetes.io/region: local
$( [ -n "$product" ] && printf '    nvidia.com/gpu.product: %s\n    nvidia.com/gpu.present: "true"\n    llm-stack.io/node-pool: gpu\n' "$product" || printf '    llm-stack.io/node-pool: cpu\n')
spec:
$( [ -n "$product" ] && printf '  taints:\n  - key: nvidia.com/gpu\n    value: present\n    effect: NoSchedule\n' || printf '  taints: []\n')
status:
  allocatable: {cpu: "96", memory: 1Ti, pods: "110", ephemeral-storage: 2Ti$( [ -n "$product" ] && echo ', nvidia.com/gpu: "8"')}
  capacity: {cpu: "96", memory: 1Ti, pods: "110", ephemeral-storage: 2Ti$( [ -n "$product" ] && echo ', nvidia.com/gpu: "8"')}
  nodeInfo: {architecture: amd64, kubeletVersion: fake, kubeProxyVersion: fake, operatingSystem: linux}
  phase: Running
EOF
}

products=(NVIDIA-A100-SXM4-80GB NVIDIA-A100-SXM4-80GB NVIDIA-H100-80GB-HBM3 NVIDIA-H100-80GB-HBM3)
zones=(zone-a zone-b)
add_nodes() {
  local i
  if [ "$RUNTIME" = kwok ]; then
    { for i in $(seq 0 $((GPU_NODES - 1))); do
        node_manifest "gpu-node-$i" "${zones[$((i % 2))]}" "${products[$((i % 4))]}"; echo "---"; done
      for i in $(seq 0 $((CPU_NODES - 1))); do
        node_manifest "cpu-node-$i" "${zones[$((i % 2))]}" ""; echo "---"; done
    } | kubectl apply -f - >/dev/null
  else
    local workers; mapfile -t workers < <(kubectl get nodes -o name -l '!node-role.kubernetes.io/control-plane')
    for i in "${!workers[@]}"; do
      local n=${workers[$i]#node/}
      kubectl label node "$n" --overwrite "topology.kubernetes.io/zone=${zones[$((i % 2))]}" >/dev/null
      if [ "$i" -lt "$GPU_NODES" ]; then
        kubectl label node "$n" --overwrite "nvidia.com/gpu.product=${products[$((i % 4))]}" llm-stack.io/node-pool=gpu >/dev/null
        kubectl taint node "$n" --overwrite nvidia.com/gpu=present:NoSchedule >/dev/null
        # The documented way to advertise an extended resource without a device plugin.
        kubectl patch node "$n" --subresource=status --type=json \
          -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"8"}]' >/dev/null
      else
        kubectl label node "$n" --overwrite llm-stack.io/node-pool=cpu >/dev/null
      fi
    done
  fi
}

# Static volumes: a KWOK cluster has no provisioner, so a default StorageClass without one and a pool of
# PersistentVolumes let the real PV controller bind the chart's claims.
add_storage() {
  [ "$RUNTIME" = kwok ] || return 0
  { cat <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: Immediate
EOF
    for i in $(seq 0 39); do cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv-$i
  labels: {llm-stack.io/pool: local}
spec:
  capacity: {storage: 10Ti}
  accessModes: [ReadWriteOnce, ReadWriteMany, ReadOnlyMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  hostPath: {path: /tmp/llm-stack-pv-$i}
EOF
    done; } | kubectl apply -f - >/dev/null
  # Retain leaves a volume Released after its claim is deleted; hand it back to the pool.
  local pv
  for pv in $(kubectl get pv -l llm-stack.io/pool=local -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{" "}{end}'); do
    kubectl patch pv "$pv" --type=json -p '[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null
  done
}

add_crds() {
  "$ROOT/scripts/fetch-crds.sh" >/dev/null
  local dir=$CACHE/crds
  [ -d "$dir" ] || die "no CRDs under $dir; scripts/fetch-crds.sh did not write them"
  kubectl apply --server-side --force-conflicts -R -f "$dir" >/dev/null
  kubectl wait --for condition=established --timeout=60s crd --all >/dev/null
}

# kwokctl starts every component at once; one that lost the race against the API server (metrics-server
# panics when it cannot read its CA at start) stays down. `kwokctl start cluster` starts only what is not
# running, so call it once the API server answers, then wait for the metrics API.
kwok_settle() {
  KWOK_KUBE_VERSION=$KUBERNETES_VERSION kwokctl start cluster --name "$NAME" >>"$CACHE/cluster-up.log" 2>&1 \
    || die "kwokctl could not restart the cluster's components (log: $CACHE/cluster-up.log)"
  command -v metrics-server >/dev/null || return 0
  local i
  for i in $(seq 1 60); do
    [ "$(kubectl get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" = True ] && return 0
    # still down after a while: it may have died again; start it once more
    [ $((i % 15)) = 0 ] && KWOK_KUBE_VERSION=$KUBERNETES_VERSION kwokctl start cluster --name "$NAME" >>"$CACHE/cluster-up.log" 2>&1
    sleep 2
  done
  die "the metrics API (metrics-server) did not become available; see ~/.kwok/clusters/$NAME/logs/metrics-server.log"
}

case "$RUNTIME" in
  kwok) kwok_up ;;
  kind) kind_up ;;
  *) die "CLUSTER_RUNTIME must be kwok or kind, not '$RUNTIME'" ;;
esac
kubectl --request-timeout=10s get --raw /readyz >/dev/null || die "the API server does not answer /readyz"
add_nodes
add_storage
[ "${LLM_STACK_SKIP_CRDS:-0}" = 1 ] || add_crds
kubectl wait --for condition=Ready node --all --timeout=60s >/dev/null || die "nodes did not become Ready"
[ "$RUNTIME" = kwok ] && kwok_settle

log "cluster '$NAME' is up: $(kubectl get nodes --no-headers | wc -l) nodes ($GPU_NODES GPU x 8, $CPU_NODES CPU)"
log "use it with: export KUBECONFIG=$KUBECONFIG_OUT"

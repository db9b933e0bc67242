#!/usr/bin/env bash
# Builds the simulator image from the locally built static binary with `docker import` (no registry, no
# Dockerfile base image needed) and, with --load-kind, loads it into the kind cluster.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
LOAD_KIND=0
case "${1:-}" in
  -h|--help) echo "Usage: scripts/sim-image.sh [--load-kind]   (image: $VLLM_SIM_IMAGE)"; exit 0 ;;
  --load-kind) LOAD_KIND=1 ;;
esac
need docker vllm-sim
rootfs=$(mktemp -d); trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/etc" "$rootfs/tmp"
cp "$(readlink -f "$(command -v vllm-sim)")" "$rootfs/vllm-sim"
echo "sim:x:1000:1000::/tmp:/sbin/nologin" > "$rootfs/etc/passwd"
tar -C "$rootfs" -c . | docker import \
  -c 'ENTRYPOINT ["/vllm-sim"]' -c 'USER 1000' -c 'EXPOSE 8000' - "$VLLM_SIM_IMAGE" >/dev/null
log "built image $VLLM_SIM_IMAGE"
if [ "$LOAD_KIND" = 1 ]; then
  need kind
  kind load docker-image "$VLLM_SIM_IMAGE" --name "${CLUSTER_NAME:-llm-stack}"
fi

#!/usr/bin/env bash
# Builds prometheus-adapter (PROMETHEUS_ADAPTER_VERSION) from source: the metrics API server that serves
# the autoscaling subchart's hpa `pods` and `external` sources from Prometheus. Its module has no replace
# directives, but the proxy refuses its version list (which `go install pkg@version` reads), so a small
# wrapper module requires the pinned version and builds it.
set -euo pipefail
usage() { echo "Usage: scripts/build-prometheus-adapter.sh  (version from versions.env PROMETHEUS_ADAPTER_VERSION; installs $HOME/.cache/llm-stack/bin/prometheus-adapter)"; }
[ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ] && { usage; exit 0; }
[ $# -eq 0 ] || { usage >&2; exit 2; }
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
need go
V=$PROMETHEUS_ADAPTER_VERSION
OUT="$CACHE/tools/prometheus-adapter-$V"
if [ -x "$OUT/adapter" ]; then
  log "prometheus-adapter $V: cached"
else
  log "prometheus-adapter $V: building from source (cold: a few minutes on 2 cores)"
  W="$CACHE/build/prometheus-adapter-$V"; mkdir -p "$W" "$OUT"; cd "$W"
  printf 'module llmstack.local/prometheus-adapter-build\n\ngo 1.24\n\nrequire sigs.k8s.io/prometheus-adapter %s\n' "$V" > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/prometheus-adapter/cmd/adapter"\n' > tools.go
  go mod tidy >/dev/null || die "go mod tidy failed for sigs.k8s.io/prometheus-adapter@$V (is the Go module proxy reachable?)"
  CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$OUT/adapter" sigs.k8s.io/prometheus-adapter/cmd/adapter \
    || die "building sigs.k8s.io/prometheus-adapter/cmd/adapter@$V failed"
fi
ln -sfn "$OUT/adapter" "$CACHE/bin/prometheus-adapter"
log "prometheus-adapter $V: $CACHE/bin/prometheus-adapter"

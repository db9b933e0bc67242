#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of KUBERNETES_VERSION from
# source. k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the staging modules), so a small
# wrapper module requires it and replaces each staging module with its published v0.X.Y.
set -euo pipefail
[ "${1:-}" = "--help" ] && { echo "Usage: scripts/build-kubernetes.sh  (versions from versions.env)"; exit 0; }
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
V=$KUBERNETES_VERSION
OUT="$CACHE/tools/kubernetes-$V"
BINS="kube-apiserver kube-controller-manager kube-scheduler kubectl"
ok=1; for b in $BINS; do [ -x "$OUT/$b" ] || ok=0; done
if [ $ok = 1 ]; then log "kubernetes $V: cached"; else
  log "kubernetes $V: building $BINS from source (cold: about 15 minutes on 2 cores)"
  W="$CACHE/build/kubernetes-$V"; mkdir -p "$W" "$OUT"
  cd "$W"
  gomod=$(go mod download -json "k8s.io/kubernetes@$V" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  staging_v="v0.${V#v1.}"
  {
    echo "module llmstack.local/kubernetes-build"
    echo; echo "go 1.24"; echo
    echo "require k8s.io/kubernetes $V"; echo
    # every `k8s.io/x => ./staging/src/k8s.io/x` becomes `k8s.io/x => k8s.io/x v0.X.Y`
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 '"$staging_v"'#p' "$gomod"
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
  go mod tidy -e >/dev/null 2>&1 || true
  minor=${V#v1.}; minor=${minor%%.*}
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$V -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    log "  go build $b"
    CGO_ENABLED=0 go build -tags tools -trimpath -ldflags "$ld" -o "$OUT/$b" "k8s.io/kubernetes/cmd/$b"
  done
  log "  go build kubectl"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$OUT/kubectl" k8s.io/kubernetes/cmd/kubectl
fi
for b in $BINS; do ln -sfn "$OUT/$b" "$CACHE/bin/$b"; done

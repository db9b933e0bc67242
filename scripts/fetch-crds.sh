#!/usr/bin/env bash
# Fetches the CRDs that llm-stack's charts create objects of, at the versions pinned in versions.env,
# and turns them (plus the Kubernetes API itself) into JSON schemas for kubeconform.
# Idempotent: a directory already at its pinned version is kept, so a second run takes a second.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/fetch-crds.sh [--force]

Writes, under $LLM_STACK_CACHE (default ~/.cache/llm-stack):
  crds/keda-$KEDA_VERSION/                          github.com/kedacore/keda/v2 config/crd/bases
  crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION/   example/prometheus-operator-crd
  crds/gateway-api-$GATEWAY_API_VERSION/            sigs.k8s.io/gateway-api config/crd/standard
  crds/linkerd-policy-$LINKERD_VERSION/             written by scripts/linkerd-policy-crds.py (the
                                                    linkerd2 module is refused by the Go proxy)
  schemas/kubernetes/v<KUBERNETES_VERSION>-standalone-strict/<kind>[-<group>]-<version>.json
                                                    from k8s.io/kubernetes api/openapi-spec/v3
  schemas/crds/<group>/<kind>_<version>.json        from every CRD above
Modules come through the Go module proxy (`go mod download`). --force rebuilds everything.
Use the schemas with:
  kubeconform -strict -kubernetes-version ${KUBERNETES_VERSION#v} \
    -schema-location "$CACHE/schemas/kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$CACHE/schemas/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

FORCE=0
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --force) FORCE=1 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

# Linkerd's policy API version our schemas follow; versions.env may pin it.
LINKERD_VERSION=${LINKERD_VERSION:-version-2.20}
PY="$CACHE/venv/bin/python"
[ -x "$PY" ] || die "the Python venv is missing; run scripts/bootstrap.sh --only python first"
command -v go >/dev/null || die "Go is required to download the pinned CRD modules (go mod download)"

work="$CACHE/build/fetch-crds"
mkdir -p "$work" "$CACHE/crds" "$CACHE/schemas"

# moddir MODULE@VERSION: the module's directory in the module cache (downloads it when missing)
moddir() {
  local json
  json=$(cd "$work" && go mod download -json "$1" 2>&1) || die "go mod download $1 failed: $json"
  printf '%s' "$json" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d.get("Error")) if d.get("Error") else print(d["Dir"])'
}

# fetch NAME VERSION MODULE SUBDIR GLOB: copy the CRD yamls of MODULE@VERSION/SUBDIR to crds/NAME-VERSION
fetch() {
  local name=$1 version=$2 module=$3 sub=$4 glob=$5
  local dest="$CACHE/crds/$name-$version" stamp="$3@$2/$4/$5"
  if [ "$FORCE" = 0 ] && [ "$(cat "$dest/.complete" 2>/dev/null)" = "$stamp" ]; then log "crds $name $version: cached"; return; fi
  log "crds $name $version: $module@$version/$sub"
  local dir; dir=$(moddir "$module@$version")
  [ -d "$dir/$sub" ] || die "$module@$version has no $sub"
  rm -rf "$dest"; mkdir -p "$dest"
  local f n=0
  for f in "$dir/$sub"/$glob; do
    [ -e "$f" ] || continue
    install -m 0644 "$f" "$dest/"; n=$((n + 1))
  done
  [ "$n" -gt 0 ] || die "no CRDs matched $sub/$glob in $module@$version"
  echo "$stamp" > "$dest/.complete"
  # cluster-up applies every file under crds/ recursively: keep only CRD manifests there.
}

# Stale versions would be applied to the cluster and shadow the pinned ones: remove them.
prune() {
  local keep=" $* " d
  for d in "$CACHE/crds"/*/; do
    [ -d "$d" ] || continue
    d=$(basename "$d")
    [[ "$keep" == *" $d "* ]] || { log "crds: removing stale $d"; rm -rf "${CACHE:?}/crds/$d"; }
  done
}

# all of KEDA's CRDs: keda-operator stops without the eventing.keda.sh ones
fetch keda "$KEDA_VERSION" github.com/kedacore/keda/v2 config/crd/bases '*.yaml'
fetch prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" github.com/prometheus-operator/prometheus-operator \
  example/prometheus-operator-crd 'monitoring.coreos.com_*.yaml'
fetch gateway-api "$GATEWAY_API_VERSION" sigs.k8s.io/gateway-api config/crd/standard 'gateway.networking.k8s.io_*.yaml'

linkerd_dest="$CACHE/crds/linkerd-policy-$LINKERD_VERSION"
linkerd_stamp=$(sha256sum "$ROOT/scripts/linkerd-policy-crds.py" | cut -c1-16)
if [ "$FORCE" = 1 ] || [ "$(cat "$linkerd_dest/.complete" 2>/dev/null)" != "$linkerd_stamp" ]; then
  log "crds linkerd-policy $LINKERD_VERSION: generating (scripts/linkerd-policy-crds.py)"
  rm -rf "$linkerd_dest"; mkdir -p "$linkerd_dest"
  "$PY" "$ROOT/scripts/linkerd-policy-crds.py" "$linkerd_dest/policy.linkerd.io.yaml"
  echo "$linkerd_stamp" > "$linkerd_dest/.complete"
else
  log "crds linkerd-policy $LINKERD_VERSION: cached"
fi

prune "keda-$KEDA_VERSION" "prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" "gateway-api-$GATEWAY_API_VERSION" \
  "linkerd-policy-$LINKERD_VERSION"

# Schemas: rebuilt when a pinned version or one of the generators changes.
stamp=$(cat "$ROOT/versions.env" "$ROOT/scripts/kubeconform-schemas.py" "$ROOT/scripts/linkerd-policy-crds.py" \
  <(echo "$LINKERD_VERSION") | sha256sum | cut -c1-16)
if [ "$FORCE" = 0 ] && [ "$(cat "$CACHE/schemas/.stamp" 2>/dev/null)" = "$stamp" ]; then
  log "schemas: cached"
  exit 0
fi
log "schemas: Kubernetes $KUBERNETES_VERSION OpenAPI v3 and CRDs -> kubeconform JSON schemas"
tmp="$CACHE/schemas.tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
k8s=$(moddir "k8s.io/kubernetes@$KUBERNETES_VERSION")
"$PY" "$ROOT/scripts/kubeconform-schemas.py" k8s "$k8s/api/openapi-spec/v3" \
  "$tmp/kubernetes/$KUBERNETES_VERSION-standalone-strict"
mapfile -t crd_files < <(find "$CACHE/crds" -name '*.yaml' | sort)
"$PY" "$ROOT/scripts/kubeconform-schemas.py" crd "$tmp/crds" "${crd_files[@]}"
echo "$stamp" > "$tmp/.stamp"
rm -rf "$CACHE/schemas"; mv "$tmp" "$CACHE/schemas"
log "schemas: $(find "$CACHE/schemas" -name '*.json' | wc -l) written to $CACHE/schemas"

#!/usr/bin/env bash
# Installs every pinned tool that llm-stack needs into a cache outside the repository.
# Idempotent: a tool already present at its pinned version is skipped, so a second run takes seconds.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/bootstrap.sh [--only GROUP[,GROUP...]] [--print-env]

Installs the pinned tools listed in versions.env into $LLM_STACK_CACHE (default ~/.cache/llm-stack):
  chart    helm, kubeconform, ct (+ yamllint, yamale), helm-docs
  cluster  kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (built from source),
           etcd (built from source), kwok, kwokctl, metrics-server
  sim      llm-stack's vLLM simulator (tools/vllm-sim)
  prom     prometheus, promtool, prometheus-adapter
  keda     KEDA operator and metrics API server (keda-operator, keda-adapter; built from source)
  crds     CRD manifests of KEDA, Prometheus Operator, Gateway API, Linkerd policy (pinned)
  kind     kind (only with CLUSTER_RUNTIME=kind; it needs privileged containers)
  policy   checkov in its own virtual environment (scripts/install-checkov.sh)
  python   a virtual environment with the pinned Python dependencies of pyproject.toml
Default: all groups. --print-env prints the PATH line to eval after installation.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

ONLY="chart,cluster,sim,prom,keda,crds,python,policy"
[ "${CLUSTER_RUNTIME:-kwok}" = kind ] && ONLY="$ONLY,kind"
PRINT_ENV=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    --print-env) PRINT_ENV=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

mkdir -p "$CACHE/bin" "$CACHE/tools" "$CACHE/build"
command -v go >/dev/null || die "Go is required (go 1.24 or newer) to build the pinned tools; install it first."

# tool NAME VERSION: path of the versioned install dir
tooldir() { echo "$CACHE/tools/$1-$2"; }

# link NAME VERSION BIN...: expose the versioned binaries on $CACHE/bin
link() {
  local dir; dir=$(tooldir "$1" "$2"); shift 2
  for b in "$@"; do ln -sfn "$dir/$b" "$CACHE/bin/$b"; done
}

# have NAME VERSION BIN...: true when every binary is already installed at that version
have() {
  local dir; dir=$(tooldir "$1" "$2"); shift 2
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

# goinstall NAME VERSION PKG BIN [LDFLAGS] [CACHE KEY]: go install a module without replace directives
goinstall() {
  local name=$1 version=$2 pkg=$3 bin=$4 ldflags=${5:-} key=${6:-$2}
  if have "$name" "$key" "$bin"; then log "$name $key: cached"; link "$name" "$key" "$bin"; return; fi
  log "$name $version: go install $pkg@$version"
  GOBIN=$(tooldir "$name" "$key") CGO_ENABLED=0 go install -ldflags "$ldflags" "$pkg@$version"
  link "$name" "$key" "$bin"
}

# gowrap NAME VERSION MODULE PKG BIN [LDFLAGS]: build PKG of MODULE@VERSION through a small wrapper module.
# Needed where `go install pkg@version` cannot be used: the module has replace directives, or the proxy
# refuses the module's version list (go install asks it for deprecation notices).
gowrap() {
  local name=$1 version=$2 module=$3 pkg=$4 bin=$5 ldflags=${6:-}
  if have "$name" "$version" "$bin"; then log "$name $version: cached"; link "$name" "$version" "$bin"; return; fi
  log "$name $version: building $pkg from $module@$version"
  local w="$CACHE/build/$name-$version"; mkdir -p "$w"
  local gomod
  gomod=$(cd "$w" && go mod download -json "$module@$version" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  {
    printf 'module llmstack.local/%s-build\n\ngo 1.24\n\nrequire %s %s\n' "$name" "$module" "$version"
    # the module's own exclude lines and version replacements still apply when it is a dependency
    python3 "$ROOT/scripts/gomod-directives.py" "$gomod"
  } > "$w/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" > "$w/tools.go"
  (cd "$w" && go mod tidy >/dev/null \
    && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$(tooldir "$name" "$version")/$bin" "$pkg") \
    || die "building $pkg from $module@$version failed (see the go output above)"
  link "$name" "$version" "$bin"
}

install_chart_tools() {
  # Helm's Makefile stamps the Kubernetes version it was built against; without it `helm template` and
  # `helm lint` assume Kubernetes 1.20 and reject our kubeVersion. The cache key carries the stamp.
  local hk="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in chartutil lint/rules; do hk="$hk -X helm.sh/helm/v3/pkg/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$p.k8sVersionMinor=34"; done
  goinstall helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm helm "$hk" "$HELM_VERSION-k8s1.34"
  goinstall kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform kubeconform
  gowrap ct "$CT_VERSION" github.com/helm/chart-testing/v3 github.com/helm/chart-testing/v3/ct ct
  goinstall helm-docs "$HELM_DOCS_VERSION" github.com/norwoodj/helm-docs/cmd/helm-docs helm-docs
  # ct reads its lint configuration from the module; keep a copy beside the binary.
  local etc; etc=$(tooldir ct "$CT_VERSION")/etc
  if [ ! -f "$etc/chart_schema.yaml" ]; then
    local moddir
    moddir=$(cd "$CACHE/build" && go mod download -json "github.com/helm/chart-testing/v3@$CT_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
    mkdir -p "$etc"; cp "$moddir/etc/chart_schema.yaml" "$moddir/etc/lintconf.yaml" "$etc/"
  fi
}

install_cluster_tools() {
  "$ROOT/scripts/build-kubernetes.sh"
  "$ROOT/scripts/build-etcd.sh"
  goinstall kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok kwok
  goinstall kwokctl "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwokctl kwokctl
  # The checksum database here does not answer for metrics-server; the proxy still serves the pinned zip.
  GONOSUMDB=sigs.k8s.io/metrics-server \
    goinstall metrics-server "$METRICS_SERVER_VERSION" sigs.k8s.io/metrics-server/cmd/metrics-server metrics-server
}

install_sim() {
  local version; version=$(sim_version)
  if have vllm-sim "$version" vllm-sim; then log "vllm-sim $version: cached"; link vllm-sim "$version" vllm-sim; return; fi
  log "vllm-sim $version: building tools/vllm-sim"
  (cd "$ROOT/tools/vllm-sim" && CGO_ENABLED=0 go build -o "$(tooldir vllm-sim "$version")/vllm-sim" .)
  link vllm-sim "$version" vllm-sim
}

install_prom() {
  # Prometheus' go.mod has exclude lines, so it builds through the wrapper. Without the builtinassets
  # tag it serves no web UI, which the tests do not need.
  gowrap prometheus "$PROMETHEUS_VERSION" github.com/prometheus/prometheus github.com/prometheus/prometheus/cmd/prometheus prometheus
  gowrap prometheus "$PROMETHEUS_VERSION" github.com/prometheus/prometheus github.com/prometheus/prometheus/cmd/promtool promtool
  # prometheus-adapter serves the autoscaling chart's HPA `pods` and `external` metrics from Prometheus.
  gowrap prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION" sigs.k8s.io/prometheus-adapter \
    sigs.k8s.io/prometheus-adapter/cmd/adapter prometheus-adapter
}

install_keda() {
  # KEDA's go.mod pins dependencies with replace lines; gowrap repeats them in the wrapper module.
  local ld="-X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION"
  gowrap keda "$KEDA_VERSION" github.com/kedacore/keda/v2 github.com/kedacore/keda/v2/cmd/operator keda-operator "$ld"
  gowrap keda "$KEDA_VERSION" github.com/kedacore/keda/v2 github.com/kedacore/keda/v2/cmd/adapter keda-adapter "$ld"
}

install_kind() {
  goinstall kind "$KIND_VERSION" sigs.k8s.io/kind kind
}

install_crds() {
  "$ROOT/scripts/fetch-crds.sh"
}

install_python() {
  local venv="$CACHE/venv" stamp
  stamp=$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)
  if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then log "python venv: cached"; return; fi
  log "python venv: installing pinned dependencies"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test]"
  echo "$stamp" > "$venv/.stamp"
  for b in yamllint yamale; do ln -sfn "$venv/bin/$b" "$CACHE/bin/$b"; done
}

want chart && install_chart_tools
want python && install_python
want sim && install_sim
want cluster && install_cluster_tools
want prom && install_prom
want crds && install_crds
want keda && install_keda
want kind && install_kind
want policy && "$ROOT/scripts/install-checkov.sh"

log "tools are in $CACHE/bin"
if [ "$PRINT_ENV" = 1 ]; then echo "export PATH=\"$CACHE/bin:$CACHE/venv/bin:\$PATH\""; fi

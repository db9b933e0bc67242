#!/usr/bin/env bash
# Builds the KEDA operator and metrics API server of KEDA_VERSION from source. KEDA's go.mod pins
# dependencies with replace directives, which `go install` refuses, so a wrapper module requires KEDA
# and repeats those replace lines.
set -euo pipefail
[ "${1:-}" = "--help" ] && { echo "Usage: scripts/build-keda.sh  (versions from versions.env)"; exit 0; }
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
V=$KEDA_VERSION
OUT="$CACHE/tools/keda-$V"
if [ -x "$OUT/keda-operator" ] && [ -x "$OUT/keda-adapter" ]; then log "keda $V: cached"; else
  log "keda $V: building operator and metrics API server from source (cold: 10-20 minutes on 2 cores)"
  W="$CACHE/build/keda-$V"; mkdir -p "$W" "$OUT"; cd "$W"
  gomod=$(go mod download -json "github.com/kedacore/keda/v2@$V" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  {
    printf 'module llmstack.local/keda-build\n\ngo 1.24\n\nrequire github.com/kedacore/keda/v2 %s\n' "$V"
    python3 "$ROOT/scripts/gomod-directives.py" "$gomod"
  } > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/kedacore/keda/v2/cmd/operator"\n\t_ "github.com/kedacore/keda/v2/cmd/adapter"\n)\n' > tools.go
  go mod tidy >/dev/null
  ld="-s -w -X github.com/kedacore/keda/v2/version.Version=$V"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$OUT/keda-operator" github.com/kedacore/keda/v2/cmd/operator
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$OUT/keda-adapter" github.com/kedacore/keda/v2/cmd/adapter
fi
ln -sfn "$OUT/keda-operator" "$CACHE/bin/keda-operator"
ln -sfn "$OUT/keda-adapter" "$CACHE/bin/keda-adapter"

#!/usr/bin/env bash
# Builds etcd ETCD_VERSION from source. etcd's server module replaces its sibling modules, so a small
# wrapper module requires it, pins the siblings to the same release and calls etcdmain.Main.
set -euo pipefail
[ "${1:-}" = "--help" ] && { echo "Usage: scripts/build-etcd.sh  (versions from versions.env)"; exit 0; }
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
V=$ETCD_VERSION
OUT="$CACHE/tools/etcd-$V"
if [ -x "$OUT/etcd" ]; then log "etcd $V: cached"; else
  log "etcd $V: building from source"
  W="$CACHE/build/etcd-$V"; mkdir -p "$W" "$OUT"; cd "$W"
  patch=${V#v3.}   # 5.24
  cat > go.mod <<MOD
module llmstack.local/etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 $V

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $V
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $V
	go.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 v2.30${patch}
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $V
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $V
	go.etcd.io/etcd/raft/v3 => go.etcd.io/etcd/raft/v3 $V
)
MOD
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod tidy >/dev/null
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" .
fi
ln -sfn "$OUT/etcd" "$CACHE/bin/etcd"

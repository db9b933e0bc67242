#!/usr/bin/env bash
# Installs the pinned checkov (the policy scanner of tests/test_policy.py) into its own virtual environment,
# $LLM_STACK_CACHE/venv-checkov, and links it as $LLM_STACK_CACHE/bin/checkov. Its own venv because checkov
# pins many libraries (pyyaml, jsonschema, ...) that would fight the harness's pins in $CACHE/venv.
# Idempotent: a venv already at the pinned version is kept.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/install-checkov.sh

Installs checkov $CHECKOV_VERSION (versions.env, default below) into $LLM_STACK_CACHE/venv-checkov
and links $LLM_STACK_CACHE/bin/checkov. Needs python3 with venv and PyPI access.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) echo "unknown argument '$1' (see --help)" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"



venv="$CACHE/venv-checkov"

if [ -x "$venv/bin/checkov" ] && [ "$(cat "$venv/.version" 2>/dev/null)" = "$CHECKOV_VERSION" ]; then
  log "checkov $CHECKOV_VERSION: cached"
else
  log "checkov $CHECKOV_VERSION: installing into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  echo "$CHECKOV_VERSION" > "$venv/.version"
fi
mkdir -p "$CACHE/bin"
ln -sfn "$venv/bin/checkov" "$CACHE/bin/checkov"

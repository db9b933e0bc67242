# Shared by the scripts: pinned versions, cache location, logging. Source it; do not run it.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=versions.env
source "$ROOT/versions.env"
CACHE=${LLM_STACK_CACHE:-$HOME/.cache/llm-stack}
export PATH="$CACHE/bin:$CACHE/venv/bin:$PATH"
export GOFLAGS=${GOFLAGS:--mod=mod}
export GOTOOLCHAIN=local

log() { printf '[llm-stack] %s\n' "$*" >&2; }
die() { printf '[llm-stack] error: %s\n' "$*" >&2; exit 1; }

# The simulator's version is the hash of its source, so a change rebuilds it.
sim_version() { (cd "$ROOT/tools/vllm-sim" && cat go.mod go.sum ./*.go 2>/dev/null | sha256sum | cut -c1-12); }

# need BIN...: fail with a clear message when a tool is missing
need() {
  for b in "$@"; do
    command -v "$b" >/dev/null || die "'$b' not found; run scripts/bootstrap.sh first (tools go to $CACHE/bin)"
  done
}

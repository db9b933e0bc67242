# Download one model into the Hugging Face cache on the mounted claim (POSIX sh, run by the download Job).
# Arguments: the `hf download` arguments (repo id, --revision, --include ...).
# Environment: MOUNT_PATH, HF_HOME, MODEL_ID, MODEL_REVISION, MARKER_NAME, INSTALL_HF_HUB, HF_HUB_VERSION.
set -eu

marker_dir="${MOUNT_PATH}/.llm-stack/downloads"
marker="${marker_dir}/${MARKER_NAME}"
if [ -f "$marker" ]; then
  echo "llm-stack: ${MODEL_ID}@${MODEL_REVISION:-default} is already in the cache (${marker}); nothing to do"
  exit 0
fi

# Group-writable files, so serving pods that share the fsGroup can write lock files next to them.
umask 0002
mkdir -p "$marker_dir" "$HF_HOME" "$TMPDIR"

if [ "$INSTALL_HF_HUB" = "true" ]; then
  echo "llm-stack: installing huggingface_hub==${HF_HUB_VERSION}"
  python3 -m pip install --quiet --no-cache-dir --disable-pip-version-check --no-warn-script-location \
    --target "${HOME}/pylib" "huggingface_hub==${HF_HUB_VERSION}"
  PYTHONPATH="${HOME}/pylib${PYTHONPATH:+:${PYTHONPATH}}"
  PATH="${HOME}/pylib/bin:${PATH}"
  export PYTHONPATH PATH
fi
if ! command -v hf >/dev/null 2>&1; then
  echo "llm-stack: the hf CLI is not in the image; set modelStorage.download.installHuggingfaceHub: true or use an image with huggingface_hub" >&2
  exit 2
fi

echo "llm-stack: hf download $*"
hf download "$@" >"${TMPDIR}/hf-download.out"
snapshot="$(tail -n 1 "${TMPDIR}/hf-download.out")"

# Written last and renamed into place: a marker exists only for a complete download.
printf 'model=%s\nrevision=%s\nsnapshot=%s\ncompleted=%s\n' \
  "$MODEL_ID" "${MODEL_REVISION:-}" "$snapshot" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"${marker}.tmp"
mv "${marker}.tmp" "$marker"
echo "llm-stack: ${MODEL_ID} is in ${snapshot}"

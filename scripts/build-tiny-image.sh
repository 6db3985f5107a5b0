#!/usr/bin/env bash
# Builds the test image ozwald/tiny:local without any registry: Debian's static busybox,
# its applets as symlinks, and the files under images/tiny/, imported with `docker import`.
#
# Idempotent: the root file system tar is made reproducibly (sorted, fixed mtimes and
# owners), hashed together with the image settings, and the build is skipped when the
# image already carries that hash in its label.
#
# Usage: scripts/build-tiny-image.sh [IMAGE]   (default ozwald/tiny:local)
# Environment: BUSYBOX=/path/to/static/busybox to use another binary.
set -euo pipefail

image=${1:-ozwald/tiny:local}
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
files=$repo_root/images/tiny
busybox=${BUSYBOX:-/bin/busybox}
hash_label=dev.ozwald.tiny.content-hash
app_uid=10001
port=8080
started_ns=$(date +%s%N)

is_static() {
    # ldd fails with "not a dynamic executable" on a static binary.
    [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1
}

if ! is_static "$busybox"; then
    if [ -n "${BUSYBOX:-}" ]; then
        echo "build-tiny-image: $busybox is not a static executable" >&2
        exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "build-tiny-image: $busybox is missing or not static; install Debian's busybox-static (sudo apt-get install -y busybox-static)" >&2
        exit 1
    fi
    echo "build-tiny-image: installing Debian's busybox-static"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq busybox-static >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq busybox-static >/dev/null; }
    is_static "$busybox" || { echo "build-tiny-image: $busybox is still not static" >&2; exit 1; }
fi

# Image settings; part of the content hash, so changing one rebuilds the image.
changes=(
    "USER $app_uid:$app_uid"
    "WORKDIR /home/app"
    "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin"
    "EXPOSE $port/tcp"
    "CMD [\"httpd\", \"-f\", \"-v\", \"-p\", \"$port\", \"-h\", \"/www\"]"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,www,tmp,home/app,root}
install -m 0755 "$busybox" "$rootfs/bin/busybox"
# Every applet, at the path busybox itself names (bin/sh, usr/bin/wget, ...).
while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$rootfs/$(dirname "$applet")"
    ln -sf /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full | sort)
install -m 0644 "$files/etc/passwd" "$files/etc/group" "$rootfs/etc/"
install -m 0644 "$files/www/"* "$rootfs/www/"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
chmod 0755 "$rootfs/home/app"
chown "$app_uid:$app_uid" "$rootfs/home/app"

tar --sort=name --format=gnu --numeric-owner --mtime=@0 \
    -C "$rootfs" -cf "$work/rootfs.tar" .
hash=$(
    {
        sha256sum "$work/rootfs.tar" | cut -d' ' -f1
        printf '%s\n' "${changes[@]}"
    } | sha256sum | cut -d' ' -f1
)

current=$(docker image inspect --format "{{ index .Config.Labels \"$hash_label\" }}" "$image" 2>/dev/null || true)
if [ "$current" = "$hash" ]; then
    echo "build-tiny-image: $image is up to date (content $hash_label=${hash:0:12})"
    exit 0
fi

change_args=()
for change in "${changes[@]}" "LABEL $hash_label=$hash"; do
    change_args+=(--change "$change")
done
docker import "${change_args[@]}" --message "ozwald tiny test image" "$work/rootfs.tar" "$image" >/dev/null

size=$(docker image inspect --format '{{ .Size }}' "$image")
elapsed_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
echo "build-tiny-image: built $image ($size bytes, content ${hash:0:12}) in $elapsed_ms ms"

#!/usr/bin/env bash
# Build ozwald_host_profile, the C++ interop client, from proto/ with Debian's
# protoc, grpc_cpp_plugin and g++, and print the binary's path on stdout.
#
# Output goes to $OZWALD_INTEROP_BUILD (default: build/interop, untracked), in a
# directory named by a hash of everything that shapes the binary: the protos,
# the client source, this script and the toolchain versions. A rerun with
# nothing changed only computes that hash.
#
# Exit codes: 0 built or cached, 1 the build failed, 3 the toolchain is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_root=${OZWALD_INTEROP_BUILD:-$repo/build/interop}
source_file=$here/host_profile_client.cc
this_script=$here/$(basename "${BASH_SOURCE[0]}")
packages="protobuf-compiler protobuf-compiler-grpc libgrpc++-dev libprotobuf-dev pkg-config g++"

missing=()
for tool in protoc grpc_cpp_plugin pkg-config g++; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [[ ${#missing[@]} -eq 0 ]] && ! library_versions=$(pkg-config --modversion grpc++ protobuf); then
    missing+=("pkg-config modules grpc++ and protobuf")
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "the C++ gRPC toolchain is missing: ${missing[*]}" >&2
    echo "install it (Debian 12): apt-get install -y $packages" >&2
    exit 3
fi

cd "$repo"
mapfile -t protos < <(find proto -name '*.proto' | LC_ALL=C sort)

key=$(
    {
        for file in "${protos[@]}" "$source_file" "$this_script"; do
            printf '%s\n' "${file#"$repo"/}"
            sha256sum <"$file"
        done
        protoc --version
        echo "$library_versions"
        g++ --version | head -n 1
    } | sha256sum | cut -c1-16
)
out=$build_root/$key
binary=$out/ozwald_host_profile
if [[ -x $binary ]]; then
    echo "$binary"
    exit 0
fi

mkdir -p "$build_root"
work=$(mktemp -d "$build_root/.building.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/gen" "$work/obj"

# The well-known types (duration, timestamp) come from libprotobuf-dev in /usr/include;
# their compiled code is in libprotobuf, so only Ozwald's own protos are generated.
protoc -I proto -I /usr/include \
    --cpp_out="$work/gen" \
    --grpc_out="$work/gen" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
    "${protos[@]}"

read -ra grpc_cflags < <(pkg-config --cflags grpc++ protobuf)
read -ra grpc_libs < <(pkg-config --libs grpc++ protobuf)
cxx=(g++ -std=c++17 -O0 -I "$work/gen" "${grpc_cflags[@]}")

# The translation units are independent: compile them side by side, then link.
mapfile -t sources < <(find "$work/gen" -name '*.cc' | LC_ALL=C sort)
pids=()
for src in "${sources[@]}"; do
    rel=${src#"$work"/gen/}
    "${cxx[@]}" -c "$src" -o "$work/obj/${rel//\//_}.o" &
    pids+=($!)
done
"${cxx[@]}" -Wall -Wextra -Werror -c "$source_file" -o "$work/obj/host_profile_client.o" &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
[[ $failed -eq 0 ]] || exit 1
"${cxx[@]}" "$work"/obj/*.o "${grpc_libs[@]}" -o "$work/ozwald_host_profile"

# Publish atomically: a concurrent build of the same key may already have won.
mkdir -p "$out"
mv -f "$work/ozwald_host_profile" "$binary"
echo "$binary"

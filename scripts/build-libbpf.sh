#!/usr/bin/env bash
# Builds the pinned libbpf from source into OUT (a static, position-independent
# libbpf.a plus its headers), or, only when the source cannot be had, points at
# the system's libbpf-dev and says so loudly. Both native builds call this:
# CMakeLists.txt (cmake-js) and binding.gyp (node-gyp).
#
# Prints "key=value" lines on stdout for the caller:
#   mode=in-tree|system  version=X.Y.Z  include=DIR  lib=FILE-or-flag  uapi=DIR
set -euo pipefail

OUT=${1:?usage: build-libbpf.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
src="$OUT/src"

if [ "${BERTH_LIBBPF:-in-tree}" != system ] && "$here/fetch-libbpf.sh" "$src" >/dev/null; then
  if [ ! -f "$OUT/libbpf.a" ] || [ "$src/src/libbpf.c" -nt "$OUT/libbpf.a" ]; then
    # EXTRA_CFLAGS: the archive is linked into a shared object (the addon).
    make -s -C "$src/src" -j"$(nproc)" BUILD_STATIC_ONLY=1 OBJDIR="$OUT/obj" \
      DESTDIR="$OUT/root" PREFIX=/usr LIBDIR=/usr/lib INCLUDEDIR=/usr/include \
      EXTRA_CFLAGS="-fPIC -g -O2" install >&2
    cp "$OUT/root/usr/lib/libbpf.a" "$OUT/libbpf.a"
  fi
  ver=$(sed -n 's/^LIBBPF_\([0-9.]*\) {.*/\1/p' "$src/src/libbpf.map" | sort -V | tail -n1)
  echo "mode=in-tree"
  echo "version=$ver"
  echo "include=$OUT/root/usr/include"
  echo "lib=$OUT/libbpf.a"
  echo "uapi=$src/include/uapi"
  exit 0
fi

{
  echo "************************************************************************"
  echo "* berth: the pinned in-tree libbpf could not be fetched or built.     *"
  echo "* FALLING BACK to the system's libbpf-dev. 'berth doctor' reports it. *"
  echo "************************************************************************"
} >&2
if ! pkg-config --exists libbpf; then
  echo "build-libbpf: no in-tree libbpf and no libbpf-dev (pkg-config libbpf) either" >&2
  exit 1
fi
echo "mode=system"
echo "version=$(pkg-config --modversion libbpf)"
echo "include=$(pkg-config --variable=includedir libbpf)"
echo "lib=-lbpf"
echo "uapi="

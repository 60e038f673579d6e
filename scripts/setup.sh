#!/usr/bin/env bash
# Sets up everything berth needs on a fresh Debian machine with node and npm:
# apt packages, npm dependencies, the native build (in-tree libbpf, BPF objects,
# the addon) and the TypeScript build. Quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

# Build tools, kernel-facing tools the tests drive, and what the libbpf fetch needs.
APT_PACKAGES=(clang llvm libelf-dev zlib1g-dev pkg-config make cmake g++
  iproute2 iptables nftables conntrack iputils-ping socat bind9-dnsutils util-linux python3
  docker.io busybox-static debian-archive-keyring ca-certificates etcd-server etcd-client
  iperf3 bpftool systemd podman)

apt_install "${APT_PACKAGES[@]}"

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  # The registry reachable here lacks other platforms' optional packages (rollup's
  # per-OS binaries), so the lockfile cannot list them and `npm ci` calls it out
  # of sync; `npm install --no-save` installs the same locked versions.
  npm ci --no-audit --no-fund --loglevel=error 2>/dev/null \
    || npm install --no-save --no-audit --no-fund --loglevel=error
fi

echo "setup: native build (libbpf, BPF objects, addon)"
npx --no-install cmake-js build --out build --log-level warn >build-native.log 2>&1 || { cat build-native.log; exit 1; }
grep -E 'libbpf: |FALLING BACK|WARNING' build-native.log || true
echo "setup: TypeScript build"
npx --no-install tsc -p tsconfig.json
echo "setup: done"

#!/usr/bin/env bash
# The load generators bench/ drives (Debian packages), installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh
BENCH_PACKAGES=(iperf3 sockperf wrk nginx-light netavark aardvark-dns)
apt_install "${BENCH_PACKAGES[@]}"

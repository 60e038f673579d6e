#!/usr/bin/env bash
# The load generators bench/ drives (Debian packages), installed when missing.
set -euo pipefail
BENCH_PACKAGES=(iperf3 sockperf wrk nginx-light)
missing=()
for p in "${BENCH_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # The harness starts its own servers inside its namespaces; a packaged service must not run on the host.
  if pgrep -x nginx >/dev/null; then service nginx stop >/dev/null 2>&1 || pkill -x nginx || true; fi
fi

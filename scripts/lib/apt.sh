# Sourced by setup.sh and bench-tools.sh: installs Debian packages that are missing,
# without letting any of them start a service in the host's network namespace.

# apt_install PKG...: installs those of PKG that are not installed yet.
apt_install() {
  local missing=() p policy_added=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # The libbpf source fetch asks apt which Debian mirror this machine uses: that needs lists.
  if [ ${#missing[@]} -gt 0 ] || ! ls /var/lib/apt/lists/*InRelease >/dev/null 2>&1; then
    echo "setup: apt-get update"
    apt-get update -q >/dev/null
  fi
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "setup: installing ${missing[*]}"
  # Debian's own switch against packages starting services (exit 101): docker.io or nginx
  # must not bring up a daemon, bridges or firewall rules in the host's namespace on our account.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  [ -z "$policy_added" ] || rm -f /usr/sbin/policy-rc.d
  return $rc
}

#!/usr/bin/env bash
# Fetches the pinned libbpf release source from Debian's source archive and
# unpacks it into DEST. Used by CMakeLists.txt; never commits the source.
#
# Why this shape:
# - a private apt configuration and state directory, so the machine's own apt
#   setup (sources, lists, cache) is read but never changed;
# - the mirror is the one the machine already uses for Debian (asked from apt),
#   so no host name lives in this repository;
# - the upstream tarball is checked against a pinned SHA-256 on top of apt's
#   own signature check of the index it came from.
#
# Exit status 0 and a line "libbpf-src: DIR" on success; non-zero with the
# reason on stderr otherwise (the build then falls back to libbpf-dev, loudly).
set -euo pipefail

DEST=${1:?usage: fetch-libbpf.sh DEST}
LIBBPF_VERSION=1.5.0
LIBBPF_SHA256=53492aff6dd47e4da04ef5e672d753b9743848bdb38e9d90eafbe190b7983c44
LIBBPF_SUITE=${BERTH_LIBBPF_SUITE:-trixie}   # the first Debian release carrying 1.5.0
TARBALL=libbpf_${LIBBPF_VERSION}.orig.tar.gz
CACHE=${BERTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}

say() { echo "fetch-libbpf: $*" >&2; }
verified() { [ -f "$1" ] && echo "$LIBBPF_SHA256  $1" | sha256sum -c --status; }

if [ -f "$DEST/.berth-libbpf-$LIBBPF_SHA256" ]; then
  echo "libbpf-src: $DEST"; exit 0
fi

mkdir -p "$CACHE"
if ! verified "$CACHE/$TARBALL"; then
  command -v apt-get >/dev/null || { say "apt-get not found: cannot fetch libbpf source"; exit 2; }
  # The Debian mirror this machine already trusts, from apt's own view of its sources.
  . /etc/os-release
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(LABEL) $(CODENAME) $(TARGET_OF)' 2>/dev/null \
    | awk -v c="${VERSION_CODENAME:-}" '$2=="Debian" && $3==c && $4=="deb" {print $1; exit}')
  if [ -z "$mirror" ]; then
    say "no Debian mirror found in this machine's apt sources (run 'apt-get update' first?)"; exit 2
  fi
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || { say "missing $keyring (package debian-archive-keyring)"; exit 2; }

  work=$(mktemp -d /tmp/berth-libbpf-apt.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work"/etc/apt.conf.d "$work"/etc/preferences.d "$work"/etc/sources.list.d \
    "$work"/state/lists/partial "$work"/cache/archives/partial "$work"/src
  cat > "$work/etc/sources.list.d/berth-src.sources" <<SRC
Types: deb-src
URIs: $mirror
Suites: $LIBBPF_SUITE
Components: main
Signed-By: $keyring
SRC
  cat > "$work/apt.conf" <<CONF
Dir::Etc "$work/etc";
Dir::Etc::main "/dev/null";
Dir::Etc::parts "$work/etc/apt.conf.d";
Dir::Etc::sourcelist "/dev/null";
Dir::Etc::sourceparts "$work/etc/sources.list.d";
Dir::Etc::preferencesparts "$work/etc/preferences.d";
Dir::State "$work/state";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$work/cache";
APT::Sandbox::User "root";
CONF
  export APT_CONFIG="$work/apt.conf"
  say "fetching libbpf $LIBBPF_VERSION source from $mirror ($LIBBPF_SUITE, deb-src)"
  apt-get -q update >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; say "apt-get update of the private source list failed"; exit 2; }
  srcver=$(apt-cache showsrc libbpf 2>/dev/null | awk '/^Version:/ {print $2}' | grep "^$LIBBPF_VERSION-" | head -n1 || true)
  [ -n "$srcver" ] || { say "libbpf $LIBBPF_VERSION not offered by $LIBBPF_SUITE"; exit 2; }
  (cd "$work/src" && apt-get -q source --download-only "libbpf=$srcver" >"$work/source.log" 2>&1) \
    || { cat "$work/source.log" >&2; say "apt-get source libbpf=$srcver failed"; exit 2; }
  verified "$work/src/$TARBALL" || { say "$TARBALL does not match the pinned SHA-256 $LIBBPF_SHA256"; exit 3; }
  mv "$work/src/$TARBALL" "$CACHE/$TARBALL.tmp" && mv "$CACHE/$TARBALL.tmp" "$CACHE/$TARBALL"
fi

verified "$CACHE/$TARBALL" || { say "cached $TARBALL fails its SHA-256 check"; exit 3; }
rm -rf "$DEST" && mkdir -p "$DEST"
tar -xzmf "$CACHE/$TARBALL" -C "$DEST" --strip-components=1
[ -f "$DEST/src/libbpf.c" ] || { say "unpacked tree has no src/libbpf.c"; exit 3; }
touch "$DEST/.berth-libbpf-$LIBBPF_SHA256"
say "libbpf $LIBBPF_VERSION source verified (sha256 $LIBBPF_SHA256)"
echo "libbpf-src: $DEST"

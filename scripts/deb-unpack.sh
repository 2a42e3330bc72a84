#!/usr/bin/env bash
# Sourced by scripts/install-deb.sh and scripts/install-redis.sh: the one
# way they fetch Debian packages without installing them.
#
# deb_unpack DIR SAY PACKAGE...: `apt-get download` of each package into
# DIR and `dpkg -x` of each into DIR/root. apt-get download needs no root
# and touches no system state; it only needs package lists, which may be
# stale or absent on a fresh machine: refreshed once. As root, apt would
# fetch as the _apt user, which cannot write to a 0700 temp dir, and warn
# about it: download as root directly instead. SAY is the function that
# reports problems. Returns non-zero, having said why, on failure.
deb_unpack() {
  local dir="$1" say="$2" pkg deb f
  shift 2
  local sandbox=() update
  [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    "$say" "apt-get and dpkg are needed to fetch Debian's $* package(s)"
    return 1
  fi
  if ! (cd "$dir" && apt-get download -qq "${sandbox[@]}" "$@"); then
    "$say" "apt-get download failed; running apt-get update once and retrying"
    update=(apt-get update -qq)
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
      update=(sudo -n apt-get update -qq)
    fi
    if ! "${update[@]}" || ! (cd "$dir" && apt-get download -qq "${sandbox[@]}" "$@"); then
      "$say" "could not download Debian's $* package(s) with apt-get"
      return 1
    fi
  fi
  for pkg in "$@"; do
    deb=
    for f in "$dir/${pkg}"_*.deb; do
      [ -f "$f" ] && deb="$f" && break
    done
    if [ -z "$deb" ]; then
      "$say" "apt-get download left no ${pkg}_*.deb in $dir"
      return 1
    fi
    dpkg -x "$deb" "$dir/root"
  done
}

#!/usr/bin/env bash
# Installs the prometheus server binary from Debian's `prometheus` package
# into DEST_DIR (default bin/) without installing the package: no service is
# registered or started and nothing outside DEST_DIR changes. Tests start
# their own Prometheus from that binary (internal/promtest).
#
# Usage: scripts/install-prometheus.sh [DEST_DIR]
# Does nothing when DEST_DIR/prometheus already runs.
set -euo pipefail

dest="${1:-bin}"
bin="$dest/prometheus"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  echo "install-prometheus: apt-get and dpkg are needed to fetch Debian's prometheus package;" >&2
  echo "  on another system install a Prometheus 2.x server binary yourself and put it at $bin" >&2
  echo "  (or point the tests at it with PROMETHEUS=/path/to/prometheus)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# apt-get download needs no root and touches no system state; it only needs
# package lists, which may be stale or absent on a fresh machine: refresh once.
# As root, apt would fetch as the _apt user, which cannot write to our 0700
# temp dir, and warn about it: download as root directly instead.
sandbox=()
[ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
download() { (cd "$tmp" && apt-get download -qq "${sandbox[@]}" prometheus); }
if ! download; then
  echo "install-prometheus: apt-get download failed; running apt-get update once and retrying" >&2
  update=(apt-get update -qq)
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    update=(sudo -n apt-get update -qq)
  fi
  if ! "${update[@]}" || ! download; then
    echo "install-prometheus: could not download Debian's prometheus package with apt-get" >&2
    exit 1
  fi
fi

deb=
for f in "$tmp"/prometheus_*.deb; do
  [ -f "$f" ] && deb="$f" && break
done
if [ -z "$deb" ]; then
  echo "install-prometheus: apt-get download left no prometheus_*.deb in $tmp" >&2
  exit 1
fi
dpkg -x "$deb" "$tmp/root"
if [ ! -f "$tmp/root/usr/bin/prometheus" ]; then
  echo "install-prometheus: $(basename "$deb") has no usr/bin/prometheus" >&2
  exit 1
fi

mkdir -p "$dest"
# Copy next to the target and rename, so a concurrent run never sees half a file.
cp "$tmp/root/usr/bin/prometheus" "$bin.tmp.$$"
chmod 0755 "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"

if ! version="$("$bin" --version 2>&1 | head -n 1)"; then
  echo "install-prometheus: $bin was installed but does not run:" >&2
  "$bin" --version >&2 || true
  exit 1
fi
echo "installed $bin ($version)"

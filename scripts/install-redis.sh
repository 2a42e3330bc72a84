#!/usr/bin/env bash
# Installs Debian's Redis server into DEST_DIR without installing the
# package, for the Argo CD tests (internal/argocdtest: Argo CD's repo-server,
# controller and API server keep their caches in Redis). Like
# scripts/install-deb.sh: `apt-get download` + `dpkg -x`, nothing outside
# DEST_DIR changes. Redis needs three packages here:
#   redis-tools   its usr/bin/redis-check-rdb is the server (redis-server's
#                 usr/bin/redis-server is only a symlink to it; the program
#                 picks its role by the name it is run as), copied as
#                 DEST_DIR/redis-server
#   liblzf1       liblzf.so.1      } copied into DEST_DIR/lib: a Debian
#   libjemalloc2  libjemalloc.so.2 } system without Redis lacks them
# Run it with LD_LIBRARY_PATH=DEST_DIR/lib. (Its other libraries, libssl3,
# libsystemd0, libatomic1, are on every Debian system.)
#
# Usage: scripts/install-redis.sh DEST_DIR
# Does nothing when DEST_DIR/redis-server already runs with --version.
set -euo pipefail

dest="${1:?usage: install-redis.sh DEST_DIR}"
bin="$dest/redis-server" lib="$dest/lib"
pkgs=(redis-tools liblzf1 libjemalloc2)
say() { echo "install-redis: $*" >&2; }

if [ -x "$bin" ] && LD_LIBRARY_PATH="$lib" "$bin" --version >/dev/null 2>&1; then
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=scripts/deb-unpack.sh
. "$(dirname "$0")/deb-unpack.sh"
if ! deb_unpack "$tmp" say "${pkgs[@]}"; then
  say "  on another system put a redis-server (7.x) at $bin"
  exit 1
fi

server="$tmp/root/usr/bin/redis-check-rdb"
if [ ! -f "$server" ]; then
  say "redis-tools has no usr/bin/redis-check-rdb"
  exit 1
fi
# The libraries' directory is the multiarch one (usr/lib/x86_64-linux-gnu on
# amd64); find them rather than name it. cp -L: liblzf.so.1 is a symlink.
libs=()
for so in liblzf.so.1 libjemalloc.so.2; do
  f="$(find "$tmp/root/usr/lib" -name "$so" | head -n 1)"
  if [ -z "$f" ]; then
    say "no $so in the unpacked packages"
    exit 1
  fi
  libs+=("$f")
done

mkdir -p "$lib"
for f in "${libs[@]}"; do
  cp -L "$f" "$lib/.$(basename "$f").tmp.$$"
  mv -f "$lib/.$(basename "$f").tmp.$$" "$lib/$(basename "$f")"
done
# Copy next to the target and rename, so a concurrent run never sees half a file.
cp "$server" "$bin.tmp.$$"
chmod 0755 "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"

if ! out="$(LD_LIBRARY_PATH="$lib" "$bin" --version 2>&1)"; then
  say "$bin was installed but does not run:"
  echo "$out" >&2
  exit 1
fi
echo "installed $bin (${out%%$'\n'*}; libraries in $lib)"

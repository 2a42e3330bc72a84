#!/usr/bin/env bash
# Installs one program from a Debian package into DEST_DIR without
# installing the package: `apt-get download` + `dpkg -x`, then the one file
# is copied out. No service is registered or started and nothing outside
# DEST_DIR changes. The tests start their own servers from these files:
#   prometheus      Debian's prometheus (usr/bin/prometheus), internal/promtest
#   runc            Debian's runc (usr/sbin/runc, with seccomp, linking the
#                   libseccomp.so.2 a Debian system has), BuildKit's OCI worker
#   busybox         Debian's busybox-static (bin/busybox, static), the base
#                   image of the Dockerfile tests (internal/buildkittest)
#
# Usage: scripts/install-deb.sh DEST_DIR PACKAGE PATH_IN_PACKAGE NAME [VERSION_ARG]
# Does nothing when DEST_DIR/NAME already runs with VERSION_ARG (default --version).
set -euo pipefail

dest="${1:?usage: install-deb.sh DEST_DIR PACKAGE PATH_IN_PACKAGE NAME [VERSION_ARG]}"
pkg="${2:?package}" inpkg="${3:?path in the package}" name="${4:?name}" vflag="${5:---version}"
bin="$dest/$name"
say() { echo "install-deb ($pkg): $*" >&2; }

if [ -x "$bin" ] && "$bin" "$vflag" >/dev/null 2>&1; then
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=scripts/deb-unpack.sh
. "$(dirname "$0")/deb-unpack.sh"
if ! deb_unpack "$tmp" say "$pkg"; then
  say "  on another system install $name yourself and put it at $bin"
  exit 1
fi
deb="$(basename "$tmp/${pkg}"_*.deb)"
if [ ! -f "$tmp/root/$inpkg" ]; then
  say "$(basename "$deb") has no $inpkg"
  exit 1
fi

mkdir -p "$dest"
# Copy next to the target and rename, so a concurrent run never sees half a file.
cp "$tmp/root/$inpkg" "$bin.tmp.$$"
chmod 0755 "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"

# The whole output, then its first line: with `| head -n 1` a program that
# prints more (busybox --help) could die of SIGPIPE and fail the check.
if ! out="$("$bin" "$vflag" 2>&1)"; then
  say "$bin was installed but does not run:"
  echo "$out" >&2
  exit 1
fi
echo "installed $bin (${out%%$'\n'*})"

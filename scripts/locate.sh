#!/usr/bin/env bash
# First step of every Gantry action: finds the Gantry tree this script
# belongs to (the action's own ref) and decides how its binaries get on PATH.
#
# On a release commit, whose action.yml embeds GANTRY_RELEASE and the SHA256
# of every release binary (written by Gantry's release workflow), it installs
# the binaries right away with fetch.sh: downloaded, checked against those
# sums, kept in the tool cache. On any other commit (or with
# GANTRY_FROM_SOURCE=true) the next steps build them from this tree with Go.
#
# Arguments: the stages the action needs (none: every binary).
# Step outputs:
#   dir        the Gantry tree
#   mode       release (installed here) or source (install.sh builds)
#   installed  true when the binaries are already on PATH
#   bin-dir    their directory, when installed
#   setup-go   true when building needs actions/setup-go (the Go on PATH is
#              missing or older than go.mod asks for)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="${GITHUB_OUTPUT:-/dev/stdout}"

if [ -n "${GANTRY_RELEASE:-}" ] && [ "${GANTRY_FROM_SOURCE:-false}" != true ]; then
  echo "Gantry $GANTRY_RELEASE: installing its released binaries"
  bin=$("$root/scripts/fetch.sh" "$@" | tail -n1)
  if [ -n "${GITHUB_PATH:-}" ]; then
    echo "$bin" >> "$GITHUB_PATH"
  fi
  {
    echo "dir=$root"
    echo "mode=release"
    echo "installed=true"
    echo "bin-dir=$bin"
    echo "setup-go=false"
  } >> "$out"
  exit 0
fi

want=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' "$root/go.mod")
have=""
if command -v go >/dev/null 2>&1; then
  have=$(go env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9][0-9.]*\).*/\1/p')
fi
need=true
if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" = "$want" ]; then
  need=false
fi
echo "Gantry source: $root (needs Go $want; found ${have:-none})"
{
  echo "dir=$root"
  echo "mode=source"
  echo "installed=false"
  echo "bin-dir=${GANTRY_INSTALL_DIR:-$root/bin}"
  echo "setup-go=$need"
} >> "$out"

#!/usr/bin/env bash
# Times a cold CI run: .ci/run on a fresh clone of HEAD with empty Go build
# and module caches (and an empty HOME, so nothing cached under ~ helps),
# all in one temporary directory that is removed afterwards. Prints .ci/run's
# table of step durations; the log is kept in LOG (default ci-cold.log).
#
# Usage: scripts/ci-cold.sh [LOG]
# Needs about 15 GB of free disk for the caches and the binaries.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
log="$(realpath -m "${1:-ci-cold.log}")"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/gantry-ci-cold.XXXXXX")"
# shellcheck disable=SC2317 # called by the trap
cleanup() { chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

git clone -q "$root" "$tmp/src"
mkdir -p "$tmp/home" "$tmp/gocache" "$tmp/gomodcache" "$tmp/gopath"
echo "ci-cold: clone of $(git -C "$root" rev-parse --short HEAD) in $tmp/src, log in $log"
status=0
(cd "$tmp/src" && env HOME="$tmp/home" GOCACHE="$tmp/gocache" GOMODCACHE="$tmp/gomodcache" \
  GOPATH="$tmp/gopath" .ci/run) >"$log" 2>&1 || status=$?
sed -n '/^== CI steps/,$p' "$log"
exit "$status"

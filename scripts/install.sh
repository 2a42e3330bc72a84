#!/usr/bin/env bash
# Builds Gantry binaries from the Gantry checkout at $GANTRY_ROOT (the
# action's own ref) into $GANTRY_ROOT/bin and puts that directory on the
# job's PATH. Arguments name the stages to build (build, sbom, ...); none
# builds every binary. A warm Go build cache makes this a few seconds.
#
# GANTRY_INSTALL_DIR (optional) puts the binaries there instead of
# $GANTRY_ROOT/bin. A directory that outlives the checkout (a self-hosted
# runner's, or one shared by several jobs) saves the link too: go build
# leaves a binary alone when it is already built from the same sources.
set -euo pipefail

root="${GANTRY_ROOT:?GANTRY_ROOT must point at the Gantry checkout}"
bin="${GANTRY_INSTALL_DIR:-$root/bin}"
mkdir -p "$bin"
cd "$root"

if [ "$#" -eq 0 ]; then
  for dir in cmd/*/; do
    dir="${dir%/}"
    set -- "$@" "${dir#cmd/}"
  done
fi

echo "::group::Building Gantry binaries ($*) with $(go version)"
for stage in "$@"; do
  if [ ! -d "cmd/$stage" ]; then
    echo "::error::no Gantry stage named '$stage' (have: $(cd cmd && echo *))"
    exit 1
  fi
  out="gantry-$stage"
  [ "$stage" = gantry ] && out=gantry
  # GOEXPERIMENT=jsonv2: the scan stage links trivy v0.74, which needs it.
  # -s -w: no symbol table or DWARF (smaller, faster to link; a panic
  # still names file and line). -buildvcs=false: the same link as `make
  # build`'s, so a warm build cache serves it without linking again.
  GOEXPERIMENT=jsonv2 CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$bin/$out" "./cmd/$stage"
  echo "built $bin/$out"
done
echo "::endgroup::"

if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$bin" >> "$GITHUB_PATH"
fi

#!/usr/bin/env bash
# Builds Gantry binaries from the Gantry checkout at $GANTRY_ROOT (the
# action's own ref) into $GANTRY_ROOT/bin and puts that directory on the
# job's PATH. Arguments name the stages to build (build, sbom, ...); none
# builds every binary. A warm Go build cache makes this a few seconds.
set -euo pipefail

root="${GANTRY_ROOT:?GANTRY_ROOT must point at the Gantry checkout}"
bin="$root/bin"
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
  GOEXPERIMENT=jsonv2 CGO_ENABLED=0 go build -trimpath -o "$bin/$out" "./cmd/$stage"
  echo "built $bin/$out"
done
echo "::endgroup::"

if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$bin" >> "$GITHUB_PATH"
fi

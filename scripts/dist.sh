#!/usr/bin/env bash
# Cross-compiles every Gantry binary for the release platforms and packs one
# archive per binary and platform: <binary>_<version>_<os>_<arch>.tar.gz,
# the names scripts/fetch.sh downloads.
#
# usage: scripts/dist.sh VERSION OUT_DIR BIN_DIR [os/arch ...]
#   OUT_DIR   receives the archives
#   BIN_DIR   receives the unpacked binaries, BIN_DIR/<os>_<arch>/ (for SBOMs)
#   os/arch   platforms (default: linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
# GANTRY_DIST_STAGES (space separated) limits the binaries, e.g. for tests.
set -euo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: $0 VERSION OUT_DIR BIN_DIR [os/arch ...]" >&2
  exit 2
fi
version="$1" out="$2" bins="$3"
shift 3
if ! [[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "dist: version '$version' is not a release tag like v1.2.3" >&2
  exit 2
fi
platforms=("$@")
[ "${#platforms[@]}" -gt 0 ] || platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stages=()
if [ -n "${GANTRY_DIST_STAGES:-}" ]; then
  read -r -a stages <<<"$GANTRY_DIST_STAGES"
else
  for dir in cmd/*/; do
    dir="${dir%/}"
    stages+=("${dir#cmd/}")
  done
fi
mkdir -p "$out" "$bins"
# Reproducible archives: fixed mtime (the commit's), owner and order.
mtime="@$(git log -1 --format=%ct 2>/dev/null || echo 0)"
# What --version prints: the tag and the commit built.
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
stamp="-X github.com/gantry-ci/gantry/internal/ghaction.version=$version -X github.com/gantry-ci/gantry/internal/ghaction.commit=$commit"

for platform in "${platforms[@]}"; do
  goos="${platform%/*}" goarch="${platform#*/}"
  case "$platform" in
    linux/amd64 | linux/arm64 | darwin/amd64 | darwin/arm64) ;;
    *) echo "dist: unsupported platform '$platform' (want linux|darwin / amd64|arm64)" >&2; exit 2 ;;
  esac
  dir="$bins/${goos}_${goarch}"
  mkdir -p "$dir"
  for stage in "${stages[@]}"; do
    [ -d "cmd/$stage" ] || { echo "dist: no cmd/$stage" >&2; exit 2; }
    bin="gantry-$stage"
    [ "$stage" = gantry ] && bin=gantry
    echo "dist: $bin $version $goos/$goarch" >&2
    # GOEXPERIMENT=jsonv2: the scan stage links trivy v0.74, which needs it.
    GOOS="$goos" GOARCH="$goarch" GOEXPERIMENT=jsonv2 CGO_ENABLED=0 \
      go build -trimpath -ldflags="-s -w -buildid= $stamp" -o "$dir/$bin" "./cmd/$stage"
    tar --sort=name --mtime="$mtime" --owner=0 --group=0 --numeric-owner \
      -C "$dir" -cf - "$bin" | gzip -n -9 >"$out/${bin}_${version}_${goos}_${goarch}.tar.gz"
  done
done
ls -l "$out" >&2

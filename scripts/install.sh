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
#
# Next to each binary, .<binary>.source records what it was built from: the
# Go version and settings, go.mod, go.sum and the content of every file
# under actions/ (the action.yml files, embedded for --help), cmd/ and
# internal/. While that is unchanged (the second stage action of a job,
# say), the binary is kept without running go build at all, which
# would spend seconds loading and hashing every dependency to reach the
# same answer. Any difference, or a binary changed since, builds as before.
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

# GOEXPERIMENT=jsonv2: the scan stage links trivy v0.74, which needs it.
# -s -w: no symbol table or DWARF (smaller, faster to link; a panic still
# names file and line). -buildvcs=false: the same link as `make build`'s,
# so a binary make build left in the directory is not linked again.
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0
flags=(-trimpath -buildvcs=false "-ldflags=-s -w")

# source_key: what the binaries are built from (see above), or nothing when
# that cannot be told from the checkout alone: a go.mod that replaces a
# module (its source may be a directory elsewhere) or a workspace.
source_key() {
  if grep -q '^[[:space:]]*replace[[:space:](]' go.mod || [ -n "$(go env GOWORK)" ]; then
    return 0
  fi
  {
    go version
    go env GOOS GOARCH GOAMD64 GOARM64 GOFLAGS GOEXPERIMENT CGO_ENABLED GOTOOLCHAIN
    printf '%s\n' "${flags[@]}"
    find go.mod go.sum actions cmd internal -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}
# binary_id FILE: the file as it is now (size, modification time to the
# nanosecond, inode): a rewrite in place within the same second shows too.
binary_id() { stat -c '%s %.9Y %i' "$1" 2>/dev/null; }

key="$(source_key)"
echo "::group::Building Gantry binaries ($*) with $(go version)"
for stage in "$@"; do
  if [ ! -d "cmd/$stage" ]; then
    echo "::error::no Gantry stage named '$stage' (have: $(cd cmd && echo *))"
    exit 1
  fi
  out="gantry-$stage"
  [ "$stage" = gantry ] && out=gantry
  record="$bin/.$out.source"
  if [ -n "$key" ] && [ -x "$bin/$out" ] && [ "$(cat "$record" 2>/dev/null)" = "$key $(binary_id "$bin/$out")" ]; then
    echo "up to date: $bin/$out (built from these sources)"
    continue
  fi
  rm -f "$record"
  go build "${flags[@]}" -o "$bin/$out" "./cmd/$stage"
  if [ -n "$key" ]; then
    echo "$key $(binary_id "$bin/$out")" >"$record.$$" && mv -f "$record.$$" "$record"
  fi
  echo "built $bin/$out"
done
echo "::endgroup::"

if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$bin" >> "$GITHUB_PATH"
fi

#!/usr/bin/env bash
# Keeps tools/go.mod's build list in step with the main module's, so that
# every package the tools (cosign, syft, trivy, the local sigstore, Traefik,
# the Kubernetes control plane ...) share with Gantry is compiled once, not
# once per module: the Go build cache reuses a compiled package only when
# every module in its import closure has the same version (and the same
# flags: the Makefile sets one GOFLAGS and GOEXPERIMENT for both).
#
# Usage:
#   scripts/tools-sync.sh          copy the main module's requirements into
#                                  tools/go.mod, tidy it, then check
#   scripts/tools-sync.sh --check  only check (make lint runs this)
#
# The check lists every module that provides a package to the main module
# (its binaries and tests) and is selected at another version in tools/;
# it fails if there is one. The fix is to raise the main module to the
# version the tools need (go get MODULE@VERSION at the root), then run this
# script without --check.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
go="${GO:-go}"
export GOWORK=off GOFLAGS="${GOFLAGS:-}" GOEXPERIMENT="${GOEXPERIMENT:-jsonv2}"

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
# The modules that provide a package to Gantry's binaries or tests.
(cd "$root" && "$go" list -deps -test -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}' ./... | sort -u) >"$tmp"

if [ "${1:-}" != "--check" ]; then
  cd "$root/tools"
  # Require each of them at Gantry's version (their go.sum lines come along;
  # tidy drops the ones no tool uses).
  reqs=()
  while read -r path version; do reqs+=("-require=$path@$version"); done <"$tmp"
  "$go" mod edit "${reqs[@]}"
  sort -u -o go.sum go.sum "$root/go.sum"
  # A requirement set lower than a tool needs is raised again by loading
  # the tools' packages (-mod=mod writes what the build selects); tidy then
  # drops what nothing imports. -e: the tools' own tests import a few
  # modules the proxy does not serve (chainguard.dev/sdk via fulcio); tidy
  # would stop there, the build does not.
  "$go" list -mod=mod -deps tool >/dev/null
  "$go" mod tidy -e >/dev/null 2>&1 || true
  cd "$root"
fi

# shellcheck disable=SC2046 # one argument per module path
drift="$(cd "$root/tools" && "$go" list -e -m -f '{{.Path}} {{.Version}}' $(cut -d' ' -f1 "$tmp") 2>/dev/null \
  | sort -u | join -a1 -e - -o 1.1,1.2,2.2 "$tmp" - | awk '$3 != "-" && $2 != $3')"
if [ -n "$drift" ]; then
  echo "tools-sync: tools/go.mod selects other versions than the main module for:"
  echo "$drift" | awk '{printf "  %s: main %s, tools %s\n", $1, $2, $3}'
  echo "tools-sync: raise the main module (go get MODULE@VERSION), then run scripts/tools-sync.sh"
  exit 1
fi
echo "tools-sync: tools/go.mod selects Gantry's version of every module both use ($(wc -l <"$tmp") provide packages to Gantry)"

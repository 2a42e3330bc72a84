#!/usr/bin/env bash
# Builds a Kubernetes control plane for tests from the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and
# kwok, into DEST (default bin/k8s). Versions are pinned by the modules under
# tools/k8s/ (one per upstream project: kubernetes v1.37 needs etcd 3.7 and
# k8s.io/* 0.37 in its build list, while we run etcd 3.6 and kwok is built
# with its own k8s.io/* 0.36, so they cannot share one build list).
#
# Usage: scripts/k8s-build.sh [DEST]
#
# Does nothing when DEST holds every binary and DEST/.stamp records the
# versions and go.sum checksums this checkout pins. A cold build takes
# 8-17 minutes on two cores and about 2.6 GB of memory; with warm Go caches
# about 20 s. The binaries take about 460 MB.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/bin/k8s}"
mods="$root/tools/k8s"
go="${GO:-go}"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

# The tools modules stand alone: no workspace, no cgo, and none of the main
# tree's GOEXPERIMENT (upstream builds its releases without it).
export GOWORK=off CGO_ENABLED=0 GOEXPERIMENT='' GOFLAGS="${GOFLAGS:-} -mod=readonly"

modversion() { (cd "$mods/$1" && "$go" list -m -f '{{.Version}}' "$2"); }
etcd_version="$(modversion etcd go.etcd.io/etcd/server/v3)"
kube_version="$(modversion kubernetes k8s.io/kubernetes)"
kwok_version="$(modversion kwok sigs.k8s.io/kwok)"

sums() { (cd "$mods" && cat etcd/go.mod etcd/go.sum kubernetes/go.mod kubernetes/go.sum kwok/go.mod kwok/go.sum) | sha256sum | cut -d' ' -f1; }
stamp_text="etcd $etcd_version
kubernetes $kube_version
kwok $kwok_version
platform $("$go" env GOOS)/$("$go" env GOARCH)
modules $(sums)"

stamp="$dest/.stamp"
complete=true
for b in "${binaries[@]}"; do
  [ -x "$dest/$b" ] || complete=false
done
if $complete && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ]; then
  touch "$stamp" # newer than the go.mod files, so make stays quiet
  echo "k8s-build: $dest is up to date (etcd $etcd_version, kubernetes $kube_version, kwok $kwok_version)"
  exit 0
fi

mkdir -p "$dest"
rm -f "$stamp"
# Build next to DEST and move the binaries in at the end, so a failed or
# concurrent build never leaves half a set under a valid stamp.
tmp="$(mktemp -d "$dest/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

start=$SECONDS
step() { echo "k8s-build: $* ($((SECONDS - start))s)"; }

build() { # module output ldflags package...
  local mod="$1" out="$2" ldflags="$3"
  shift 3
  (cd "$mods/$mod" && "$go" build -trimpath -ldflags "-s -w $ldflags" -o "$out" "$@")
}

step "etcd $etcd_version"
build etcd "$tmp/etcd" "-X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd_version" \
  go.etcd.io/etcd/server/v3

step "kwok $kwok_version"
build kwok "$tmp/" "-X sigs.k8s.io/kwok/pkg/consts.Version=${kwok_version#v}" \
  sigs.k8s.io/kwok/cmd/kwok

step "kubernetes $kube_version (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)"
major="${kube_version#v}"; major="${major%%.*}"
minor="${kube_version#v*.}"; minor="${minor%%.*}"
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$kube_version"
done
build kubernetes "$tmp/" "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl

for b in "${binaries[@]}"; do
  mv -f "$tmp/$b" "$dest/$b"
done
printf '%s\n' "$stamp_text" >"$stamp"
step "done: $(du -sh "$dest" | cut -f1) in $dest; build took $((SECONDS - start))s"

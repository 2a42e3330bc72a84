#!/usr/bin/env bash
# Builds the programs the tests run, from the Go module proxy, at the
# versions tools/go.mod pins. tools/ is one module whose build list agrees
# with the main module's (scripts/tools-sync.sh keeps it so), built with the
# same flags as Gantry itself (the Makefile's GOFLAGS and GOEXPERIMENT): a
# package Gantry and a tool share (trivy, cosign, syft, client-go, grpc ...)
# is compiled once on a cold machine, not once per tool.
#
# Usage: scripts/tools-build.sh BIN SET...
#   cli       actionlint crane cosign syft trivy jv fulcio rekor tsa traefik
#             gitleaks, into BIN/
#   k8s       the control plane the tests start: etcd kube-apiserver
#             kube-controller-manager kube-scheduler kwok, into BIN/k8s/
#   kubectl   kubectl, into BIN/k8s/ (for people: make k8s-up)
#   buildkit  buildkitd and buildctl (the Dockerfile mode's daemon, and the
#             bench's yardstick), into BIN/, built with the tag seccomp as
#             upstream builds them (its other tags, netgo and osusergo,
#             change nothing with CGO off but would compile net and os/user
#             and everything above them again); runc comes from Debian
#             (scripts/install-runc.sh)
#   act       act, into BIN/ (its own module, tools/act: it does not
#             build against the go-archive trivy needs)
#   rollouts  the Argo Rollouts controller, into BIN/ (its own module,
#             tools/rollouts-controller: it does not build against the
#             Prometheus client Gantry uses)
#   argocd    Argo CD (one binary for all its components) and kustomize,
#             which its repo-server runs, into BIN/argocd/, with Argo CD's
#             git-verify-wrapper.sh and gpg-wrapper.sh (the repo-server
#             runs them from PATH) and its CRDs (BIN/argocd/crds/), copied
#             from the module; its own module, tools/argocd, built with Go
#             1.27 (GOTOOLCHAIN=go1.27.3 for this set's go commands only:
#             Argo CD's go.mod asks for it) and without GOEXPERIMENT, which
#             it does not need. Redis, which it also needs, comes from
#             Debian (scripts/install-redis.sh)
#
# A set is skipped when BIN/.stamp-SET matches what this checkout pins (the
# go.mod and go.sum, the Go version and the flags); otherwise it is built
# next to BIN and moved in at the end, so a failed build never leaves half a
# set under a valid stamp. The sets given in one call are built in one
# `go build` each, one after the other (act, rollouts and argocd, which
# share little with them, beside them): two builds of tools/go.mod at once
# would compile the packages they share twice.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath -m "${1:?usage: scripts/tools-build.sh BIN SET...}")"
shift
go="${GO:-go}"
export GOWORK=off CGO_ENABLED="${CGO_ENABLED:-0}" GOEXPERIMENT="${GOEXPERIMENT:-jsonv2}"
flags="${GOFLAGS:-}"
# One spelling of the flags, whitespace collapsed: the stamps record them,
# and make's GOFLAGS ("-trimpath -buildvcs=false ", a trailing space) must
# stamp the same as the same flags given by hand.
read -ra extra <<<"${flags//-trimpath/}"
GOFLAGS="-trimpath"
for f in "${extra[@]}"; do GOFLAGS+=" $f"; done
export GOFLAGS="$GOFLAGS -mod=readonly"

# name=package for every set; the name is the binary's. (The arrays are
# read through namerefs, which shellcheck does not follow.)
# shellcheck disable=SC2034
cli=(
  actionlint=github.com/rhysd/actionlint/cmd/actionlint
  crane=github.com/google/go-containerregistry/cmd/crane
  cosign=github.com/sigstore/cosign/v3/cmd/cosign
  syft=github.com/anchore/syft/cmd/syft
  trivy=github.com/aquasecurity/trivy/cmd/trivy
  jv=github.com/santhosh-tekuri/jsonschema/cmd/jv
  fulcio=github.com/sigstore/fulcio
  rekor=github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix
  tsa=github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server
  traefik=github.com/traefik/traefik/v3/cmd/traefik
  gitleaks=github.com/zricethezav/gitleaks/v8
)
# shellcheck disable=SC2034
k8s=(
  etcd=go.etcd.io/etcd/server/v3
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler
  kwok=sigs.k8s.io/kwok/cmd/kwok
)
# shellcheck disable=SC2034
kubectl=(kubectl=k8s.io/kubernetes/cmd/kubectl)
# shellcheck disable=SC2034
buildkit=(buildkitd=github.com/moby/buildkit/cmd/buildkitd buildctl=github.com/moby/buildkit/cmd/buildctl)
# shellcheck disable=SC2034
act=(act=github.com/nektos/act)
# shellcheck disable=SC2034
rollouts=(rollouts-controller=github.com/argoproj/argo-rollouts/cmd/rollouts-controller)
# shellcheck disable=SC2034
argocd=(argocd=github.com/argoproj/argo-cd/v3/cmd kustomize=sigs.k8s.io/kustomize/kustomize/v5)
# What the argocd set copies from Argo CD's module, beside its binaries.
argocd_files=(hack/git-verify-wrapper.sh hack/gpg-wrapper.sh
  manifests/crds/application-crd.yaml manifests/crds/appproject-crd.yaml manifests/crds/applicationset-crd.yaml)

module() { case "$1" in act) echo tools/act ;; rollouts) echo tools/rollouts-controller ;; argocd) echo tools/argocd ;; *) echo tools ;; esac; }
# gocmd SET ARGS...: the go command as SET is built: argocd's with Go 1.27
# (its go.mod's `go 1.27.0` line; the Go module proxy serves the toolchain)
# and no GOEXPERIMENT, every other set's with this environment.
gocmd() {
  case "$1" in
    argocd) shift; GOTOOLCHAIN=go1.27.3 GOEXPERIMENT='' "$go" "$@" ;;
    *) shift; "$go" "$@" ;;
  esac
}

start=$SECONDS
log() { echo "tools-build: $* ($((SECONDS - start))s)"; }

# stamp SET: what the set's binaries are built from.
stamp() {
  local mod; mod="$(module "$1")"
  { echo "set $1"; gocmd "$1" version; gocmd "$1" env GOEXPERIMENT
    echo "GOFLAGS=$GOFLAGS CGO_ENABLED=$CGO_ENABLED"
    cat "$root/$mod/go.mod" "$root/$mod/go.sum" "$0"; } | sha256sum | cut -d' ' -f1
}
dest() { case "$1" in k8s|kubectl) echo "$bin/k8s" ;; argocd) echo "$bin/argocd" ;; *) echo "$bin" ;; esac; }
# extra SET: the files besides binaries the set puts in dest, relative to it.
extra() {
  local f
  [ "$1" = argocd ] || return 0
  for f in "${argocd_files[@]}"; do
    case "$f" in hack/*) basename "$f" ;; *) echo "crds/$(basename "$f")" ;; esac
  done
}
fresh() { # SET: every binary and file present and the stamp current
  local -n list="$1"
  local entry d f; d="$(dest "$1")"
  for entry in "${list[@]}"; do [ -x "$d/${entry%%=*}" ] || return 1; done
  while read -r f; do [ -z "$f" ] || [ -f "$d/$f" ] || return 1; done < <(extra "$1")
  [ "$(cat "$bin/.stamp-$1" 2>/dev/null)" = "$(stamp "$1")" ]
}

# build SET: one go build for the set's packages, each renamed to its name.
build() {
  local set="$1" mod ldflags="-s -w" d tmp entry pkg out f tags=()
  mod="$(module "$set")"
  local -n list="$set"
  d="$(dest "$set")"
  case "$set" in
    cli)
      # gitleaks reports the version its rule files are checked against.
      ldflags+=" -X github.com/zricethezav/gitleaks/v8/version.Version=$(cd "$root/tools" && "$go" list -m -f '{{.Version}}' github.com/zricethezav/gitleaks/v8)" ;;
    k8s|kubectl)
      local kv ev wv major minor pkgv
      read -r kv ev wv < <(cd "$root/tools" && "$go" list -m -f '{{.Version}}' \
        k8s.io/kubernetes go.etcd.io/etcd/server/v3 sigs.k8s.io/kwok | tr '\n' ' ')
      major="${kv#v}"; major="${major%%.*}"
      minor="${kv#v*.}"; minor="${minor%%.*}"
      for pkgv in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkgv.gitVersion=$kv -X $pkgv.gitMajor=$major -X $pkgv.gitMinor=$minor"
        ldflags+=" -X $pkgv.gitTreeState=clean -X $pkgv.gitCommit=$kv"
      done
      ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=$ev"
      ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=${wv#v}" ;;
    buildkit)
      local bv
      bv="$(cd "$root/tools" && "$go" list -m -f '{{.Version}}' github.com/moby/buildkit)"
      ldflags+=" -X github.com/moby/buildkit/version.Version=$bv -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
      tags=(-tags seccomp) ;;
    argocd)
      # As Argo CD's Makefile stamps it (argocd version --client); kustomize
      # reads its version from the build info.
      local av
      av="$(cd "$root/$mod" && gocmd argocd list -m -f '{{.Version}}' github.com/argoproj/argo-cd/v3)"
      ldflags+=" -X github.com/argoproj/argo-cd/v3/common.version=${av#v} -X github.com/argoproj/argo-cd/v3/common.gitTag=$av"
      ldflags+=" -X github.com/argoproj/argo-cd/v3/common.gitTreeState=clean" ;;
  esac
  mkdir -p "$d"
  tmp="$(mktemp -d "$d/.build-$set.XXXXXX")"
  local pkgs=()
  for entry in "${list[@]}"; do pkgs+=("${entry#*=}"); done
  log "$set: building ${list[*]%%=*}"
  if ! (cd "$root/$mod" && gocmd "$set" build "${tags[@]}" -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}"); then
    rm -rf "$tmp"; return 1
  fi
  if [ "$set" = argocd ]; then
    local src
    src="$(cd "$root/$mod" && gocmd argocd list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)" || src=
    [ -n "$src" ] || { echo "tools-build: cannot find Argo CD's module directory" >&2; rm -rf "$tmp"; return 1; }
    mkdir -p "$tmp/crds"
    for f in "${argocd_files[@]}"; do
      case "$f" in
        hack/*) install -m 0755 "$src/$f" "$tmp/" ;;
        *) install -m 0644 "$src/$f" "$tmp/crds/" ;;
      esac || { rm -rf "$tmp"; return 1; }
    done
  fi
  for entry in "${list[@]}"; do
    pkg="${entry#*=}"
    out="$(basename "$pkg")"                                   # go build's name:
    [[ "$out" =~ ^v[0-9]+$ ]] && out="$(basename "$(dirname "$pkg")")" # the last element, /vN dropped
    mv -f "$tmp/$out" "$tmp/.${entry%%=*}.out" 2>/dev/null || { echo "tools-build: $pkg gave no $tmp/$out" >&2; rm -rf "$tmp"; return 1; }
  done
  for entry in "${list[@]}"; do mv -f "$tmp/.${entry%%=*}.out" "$d/${entry%%=*}"; done
  while read -r f; do
    [ -z "$f" ] && continue
    mkdir -p "$(dirname "$d/$f")" && mv -f "$tmp/$f" "$d/$f"
  done < <(extra "$set")
  rm -rf "$tmp"
  stamp "$set" >"$bin/.stamp-$set"
  log "$set: done"
}

mkdir -p "$bin"
todo=()
for set in "$@"; do
  case "$set" in cli|k8s|kubectl|buildkit|act|rollouts|argocd) ;; *) echo "tools-build: unknown set $set (cli, k8s, kubectl, buildkit, act, rollouts, argocd)" >&2; exit 2 ;; esac
  if fresh "$set"; then echo "tools-build: $set is up to date in $(dest "$set")"; else todo+=("$set"); fi
done
[ ${#todo[@]} -eq 0 ] && exit 0

# act, rollouts and argocd are their own modules and share little with the
# rest (argocd nothing: another Go version compiles it):
# each is built beside it from the start, so their compiles use the CPU
# while the tools/go.mod build still waits on module downloads (cold), and
# their single-threaded links overlap its compiles.
main=() pids=()
for set in "${todo[@]}"; do
  case "$set" in
    act|rollouts|argocd) build "$set" & pids+=($!) ;;
    *) main+=("$set") ;;
  esac
done
status=0
for set in "${main[@]}"; do build "$set" || status=1; done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit "$status"

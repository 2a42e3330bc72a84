#!/usr/bin/env bash
# Starts the tests' Kubernetes control plane (internal/k8stest: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kwok with one fake
# node) in the background, for trying things by hand or a demo. Tests do not
# need it: they start their own.
#
# Usage: scripts/k8s-up.sh [DIR]   (DIR: the binaries, default bin/k8s)
# Writes DIR/kubeconfig; DIR/run/ holds the pid files, logs, certificates
# and etcd's data. scripts/k8s-down.sh stops it.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(cd "${1:-$root/bin/k8s}" && pwd)"
cd "$root"
exec "${GO:-go}" run ./internal/k8stest/k8sup -bin "$dir" -run "$dir/run" -kubeconfig "$dir/kubeconfig"

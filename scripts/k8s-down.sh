#!/usr/bin/env bash
# Stops the control plane scripts/k8s-up.sh started: the processes recorded
# in DIR/run/*.pid, clients first (kwok, scheduler, controller manager), then
# kube-apiserver, then etcd; SIGTERM, SIGKILL after 5 s. Then removes DIR/run
# and DIR/kubeconfig. A pid is only signalled while it still runs a binary
# from DIR, so a recycled pid is left alone.
#
# Usage: scripts/k8s-down.sh [DIR]   (default bin/k8s)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/bin/k8s}"
run="$dir/run"

if [ ! -d "$run" ]; then
  echo "k8s-down: nothing to stop ($run does not exist)"
  exit 0
fi
dir="$(cd "$dir" && pwd)"

ours() { # pid name: does pid still run DIR/name?
  local exe
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  [ "$exe" = "$dir/$2" ]
}

stopped=0
stop_group() { # name...: SIGTERM them together, wait up to 5 s, SIGKILL the rest
  local name pid alive
  local -a group=()
  for name in "$@"; do
    [ -f "$run/$name.pid" ] || continue
    pid="$(tr -dc 0-9 <"$run/$name.pid")"
    if [ -n "$pid" ] && ours "$pid" "$name"; then
      kill -TERM "$pid" 2>/dev/null || true
      group+=("$pid:$name")
      stopped=$((stopped + 1))
    fi
  done
  [ "${#group[@]}" -gt 0 ] || return 0
  for _ in $(seq 50); do
    alive=0
    for p in "${group[@]}"; do
      if ours "${p%%:*}" "${p#*:}"; then alive=1; fi
    done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for p in "${group[@]}"; do
    if ours "${p%%:*}" "${p#*:}"; then
      echo "k8s-down: ${p#*:} (pid ${p%%:*}) still running 5 s after SIGTERM; killing it"
      kill -KILL "${p%%:*}" 2>/dev/null || true
    fi
  done
}

stop_group kwok kube-scheduler kube-controller-manager
stop_group kube-apiserver
stop_group etcd

rm -rf "$run" "$dir/kubeconfig"
echo "k8s-down: stopped $stopped processes"

#!/usr/bin/env bash
# Step outputs for Gantry's composite actions: dir (the Gantry checkout this
# script belongs to, i.e. the action's own ref) and setup-go (true unless the
# Go already on PATH is at least the version go.mod asks for, so a job's own
# Go is left alone when it is new enough).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
want=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' "$root/go.mod")
have=""
if command -v go >/dev/null 2>&1; then
  have=$(go env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9][0-9.]*\).*/\1/p')
fi
need=true
if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" = "$want" ]; then
  need=false
fi
echo "Gantry source: $root (needs Go $want; found ${have:-none})"
{
  echo "dir=$root"
  echo "setup-go=$need"
} >> "${GITHUB_OUTPUT:-/dev/stdout}"

#!/usr/bin/env bash
# Puts buildkitd and runc on PATH for gantry-build's Dockerfile mode when
# the "buildkit" input is empty (gantry-build then starts its own daemon).
# Nothing is done for what is already on PATH (GitHub's Ubuntu runners have
# runc). Otherwise:
#   buildkitd  built from the Go module proxy at the version tools/go.mod
#              pins (scripts/tools-build.sh: BuildKit's own flags; a few
#              minutes on a cold runner, seconds from Go's build cache)
#   runc       Debian/Ubuntu's package, unpacked (scripts/install-deb.sh)
# into GANTRY_INSTALL_DIR (default bin/ of this tree), added to GITHUB_PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${GANTRY_INSTALL_DIR:-$root/bin}"
mkdir -p "$bin"
export PATH="$bin:$PATH"
if command -v buildkitd >/dev/null 2>&1; then
  echo "buildkitd: $(command -v buildkitd)"
else
  echo "::group::Building buildkitd from the Go module proxy"
  GOFLAGS="-buildvcs=false" "$root/scripts/tools-build.sh" "$bin" buildkit
  echo "::endgroup::"
fi
if command -v runc >/dev/null 2>&1 || command -v buildkit-runc >/dev/null 2>&1; then
  echo "runc: $(command -v runc || command -v buildkit-runc)"
else
  "$root/scripts/install-deb.sh" "$bin" runc usr/sbin/runc runc
fi
if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$bin" >> "$GITHUB_PATH"
fi

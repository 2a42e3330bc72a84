#!/usr/bin/env bash
# Installs the gantry-* binaries of a Gantry release commit: downloads one
# archive per binary for this runner's OS and architecture, checks each
# against the SHA256 embedded in the action.yml of that commit (never
# against a downloaded checksum file), and keeps the binaries in the tool
# cache. Nothing reaches the cache or PATH unless every archive matched.
#
# Environment (set by the action.yml step that calls locate.sh):
#   GANTRY_RELEASE          release version, e.g. v1.2.3
#   GANTRY_RELEASE_URL      where the release's assets are downloaded from
#   GANTRY_RELEASE_SHA256   sha256sum lines: "<hex>  <asset name>"
#   GANTRY_DOWNLOAD_URL     optional override of GANTRY_RELEASE_URL (mirror)
# Arguments: stages (build, sbom, ...; gantry for the gantry CLI); none
# installs every binary the release lists for this platform.
# Prints the binary directory on stdout (last line).
set -euo pipefail

fail() {
  echo "::error title=Gantry setup::$*" >&2
  exit 1
}

version="${GANTRY_RELEASE:?GANTRY_RELEASE is empty: not a release commit}"
sums="${GANTRY_RELEASE_SHA256:-}"
[ -n "$sums" ] || fail "the action.yml of Gantry $version embeds no SHA256 sums: this commit was not made by Gantry's release workflow; use a release tag or set from-source: true"
base="${GANTRY_DOWNLOAD_URL:-${GANTRY_RELEASE_URL:-}}"
[ -n "$base" ] || fail "no download URL for Gantry $version: set the download-url input"
base="${base%/}"

runner_os="${RUNNER_OS:-$(uname -s)}"
runner_arch="${RUNNER_ARCH:-$(uname -m)}"
case "$runner_os" in
  Linux | linux) os=linux ;;
  macOS | Darwin | darwin) os=darwin ;;
  *) fail "Gantry $version ships binaries for Linux and macOS, not $runner_os: set from-source: true to build with Go" ;;
esac
case "$runner_arch" in
  X64 | x86_64 | amd64) arch=amd64 ;;
  ARM64 | arm64 | aarch64) arch=arm64 ;;
  *) fail "Gantry $version ships binaries for amd64 and arm64, not $runner_arch: set from-source: true to build with Go" ;;
esac

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

suffix="_${version}_${os}_${arch}.tar.gz"
binaries=()
if [ "$#" -eq 0 ]; then
  while read -r _ asset; do
    asset="${asset#\*}"
    case "$asset" in *"$suffix") binaries+=("${asset%"$suffix"}") ;; esac
  done <<<"$sums"
  [ "${#binaries[@]}" -gt 0 ] || fail "Gantry $version embeds no SHA256 for any $os/$arch binary"
else
  for stage in "$@"; do
    if [ "$stage" = gantry ]; then binaries+=(gantry); else binaries+=("gantry-$stage"); fi
  done
fi

cache="${RUNNER_TOOL_CACHE:-$HOME/.cache/gantry-tool-cache}/gantry/${version#v}/${os}-${arch}"
mkdir -p "$cache"
work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/gantry-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Pass 1: download and check every archive; the cache is untouched until all match.
fetched=()
for bin in "${binaries[@]}"; do
  asset="${bin}${suffix}"
  want=$(awk -v a="$asset" '$2 == a || $2 == "*" a { print $1; exit }' <<<"$sums")
  [ -n "$want" ] || fail "no SHA256 for $asset is embedded in Gantry $version's action.yml (is '$bin' a Gantry binary, and does the release ship $os/$arch?)"
  marker="$cache/$bin.sha256"
  if [ -x "$cache/$bin" ] && [ -f "$marker" ]; then
    # The marker holds the archive's and the extracted binary's SHA256; a
    # cached binary is reused only while both still hold.
    read -r cached_archive cached_bin <"$marker" || true
    if [ "$cached_archive" = "$want" ] && [ "$(sha256 "$cache/$bin")" = "$cached_bin" ]; then
      echo "$bin: tool cache ($cache)" >&2
      continue
    fi
    echo "$bin: cached copy does not match Gantry $version's SHA256; downloading again" >&2
  fi
  url="$base/$asset"
  echo "$bin: downloading $url" >&2
  if ! curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 20 -o "$work/$asset" "$url"; then
    fail "downloading $url failed: check download-url (or set from-source: true)"
  fi
  got=$(sha256 "$work/$asset")
  if [ "$got" != "$want" ]; then
    fail "SHA256 mismatch for $asset from $url: got $got, want $want (embedded in Gantry $version's action.yml). The download is discarded; nothing was installed."
  fi
  mkdir -p "$work/$bin.d"
  tar -xzf "$work/$asset" -C "$work/$bin.d"
  [ -f "$work/$bin.d/$bin" ] || fail "$asset does not contain $bin"
  chmod 0755 "$work/$bin.d/$bin"
  fetched+=("$bin $want")
done

# Pass 2: move the checked binaries into the cache.
for entry in ${fetched[@]+"${fetched[@]}"}; do
  bin="${entry% *}"
  want="${entry#* }"
  mv -f "$work/$bin.d/$bin" "$cache/$bin"
  echo "$want $(sha256 "$cache/$bin")" >"$cache/$bin.sha256"
  echo "$bin: installed $version ($want)" >&2
done
echo "$cache"

#!/usr/bin/env bash
# Runs every native Go fuzz target (func FuzzX in a _test.go file) for a
# bounded time each: FUZZTIME (default 30s). Their seed corpora (f.Add and
# testdata/fuzz/FuzzX/ of each package) already run in `make test` as plain
# tests; this searches beyond them. A crash is written by go test under
# the package's testdata/fuzz/FuzzX/ (commit it: it becomes a regression
# seed) and fails the run.
#
# Usage: scripts/fuzz.sh [PATTERN]   (PATTERN: a regexp on target names)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT="${GOEXPERIMENT:-jsonv2}" CGO_ENABLED="${CGO_ENABLED:-0}"
fuzztime="${FUZZTIME:-30s}"
pattern="${1:-.}"
status=0 ran=0
while IFS=: read -r file name; do
  [[ "$name" =~ $pattern ]] || continue
  pkg="./$(dirname "$file")"
  echo "== $name ($pkg, $fuzztime)"
  ran=$((ran + 1))
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" || status=1
done < <(grep -rhoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' --with-filename cmd internal \
  | sed -E 's/^(.*):func (Fuzz[A-Za-z0-9_]*)$/\1:\2/' | sort)
echo "fuzz: $ran target(s) run for $fuzztime each"
exit "$status"

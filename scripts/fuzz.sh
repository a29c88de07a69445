#!/usr/bin/env bash
# Run every Fuzz target in the module for FUZZTIME each (default 30s).
# Targets are discovered with `go test -list '^Fuzz'`, so new ones are picked up.
# `go test -fuzz` accepts one package and one target at a time, hence the loop.
set -euo pipefail
FUZZTIME=${FUZZTIME:-30s}
GO=${GO:-go}
PKGS=${PKGS:-./...}

list=$("$GO" test -run '^$' -list '^Fuzz' $PKGS)
# Output: target names, then one "ok  <pkg> <time>" line per package.
targets=()
pending=()
while IFS= read -r line; do
  case $line in
    Fuzz*) pending+=("$line") ;;
    "ok "*)
      pkg=$(awk '{print $2}' <<<"$line")
      for t in ${pending[@]+"${pending[@]}"}; do targets+=("$pkg $t"); done
      pending=() ;;
  esac
done <<<"$list"

if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no Fuzz targets found in $PKGS"
  exit 0
fi

echo "fuzz: ${#targets[@]} target(s), $FUZZTIME each"
failed=0
for entry in "${targets[@]}"; do
  read -r pkg t <<<"$entry"
  echo "=== fuzz $pkg $t"
  if ! "$GO" test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" "$pkg"; then
    echo "--- FAIL fuzz $pkg $t (a failing input is saved under the package's testdata/fuzz/$t/)"
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ] || { echo "fuzz: $failed target(s) failed"; exit 1; }
echo "fuzz: all ${#targets[@]} target(s) passed"

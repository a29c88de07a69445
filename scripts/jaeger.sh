#!/usr/bin/env bash
# Build the Jaeger all-in-one binary the tracing e2e test runs
# (cmd/proxy/e2e_trace_integration_test.go), idempotently:
#   .cache/jaeger/jaeger-<version>
# from the tool pinned in tools/go.mod (its own module, so the proxy's
# go.mod stays small). When the binary is there it only checks (instant);
# the first build takes a few minutes on 2 cores. Prints the binary's path.
# Exits non-zero with a clear message when it cannot be built: in CI a
# missing Jaeger must fail the run, never silently skip the test.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-go}
log() { printf 'jaeger: %s\n' "$*" >&2; }
die() { printf 'jaeger: ERROR: %s\n' "$*" >&2; exit 1; }

version=$(cd "$root/tools" && "$GO" list -m -f '{{.Version}}' github.com/jaegertracing/jaeger) ||
  die "cannot read the jaeger version from tools/go.mod"
bin="$root/.cache/jaeger/jaeger-$version"

# Serialise concurrent runs (two `make test` at once) so they build once.
mkdir -p "$root/.cache/jaeger"
exec 9>"$root/.cache/jaeger/.lock"
if command -v flock >/dev/null 2>&1; then flock -w 900 9 || die "timed out waiting for the build lock"; fi

if [ ! -x "$bin" ]; then
  log "building jaeger $version into $bin (once; a few minutes)"
  t0=$(date +%s)
  tmp="$bin.tmp.$$"
  (cd "$root/tools" && "$GO" build -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger) ||
    { rm -f "$tmp"; die "go build github.com/jaegertracing/jaeger/cmd/jaeger@$version failed"; }
  mv "$tmp" "$bin"
  log "built in $(( $(date +%s) - t0 ))s"
fi
echo "$bin"

#!/usr/bin/env bash
# Bring up everything the test suite needs, idempotently:
#   - pgvector 0.8.0 built from Debian trixie's source package (see shared DEPS.md)
#   - PostgreSQL on 127.0.0.1:5432 (started if pg_isready fails)
#   - Redis on 127.0.0.1:6379 (started if PING fails)
#   - database "test" with the "vector" extension created (as the postgres superuser)
#
# Safe to re-run; when everything is already there it only checks (well under a second).
# Exits non-zero with a clear message if anything cannot be provided: in CI a missing
# service must fail the run, never silently skip tests.
set -euo pipefail

PGVECTOR_VERSION=0.8.0
PGVECTOR_DEB_VERSION=0.8.0-1
PG_HOST=127.0.0.1
PG_PORT=5432
PG_DB=test
REDIS_HOST=127.0.0.1
REDIS_PORT=${SERVICES_REDIS_PORT:-6379}  # override only to test this script
WAIT_SECS=30

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found: $2"; }

# Run a command as root (CI and the dev machines run as root; sudo as a fallback).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root for: $*"; fi
}

# Run a command as the postgres OS user (peer auth over the local socket).
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n -u postgres "$@"
  else die "need root or the postgres user to run: $*"; fi
}

# Serialise concurrent runs (e.g. two `make test` at once) so they don't both apt-get.
lockfile=${TMPDIR:-/tmp}/llmproxy-services.lock
exec 9>"$lockfile"
if command -v flock >/dev/null 2>&1; then flock -w 600 9 || die "timed out waiting for $lockfile"; fi

need pg_isready "PostgreSQL client tools (package postgresql-client-15) are missing"
need psql "PostgreSQL client tools (package postgresql-client-15) are missing"
need redis-cli "Redis client (package redis-tools) is missing"

[ -d /etc/postgresql ] || die "no PostgreSQL cluster under /etc/postgresql (package postgresql-15)"
PG_MAJOR=$(ls /etc/postgresql | sort -V | tail -n1)
[ -n "$PG_MAJOR" ] || die "no PostgreSQL cluster under /etc/postgresql"
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
CONTROL=/usr/share/postgresql/$PG_MAJOR/extension/vector.control

# ---------------------------------------------------------------- pgvector
install_pgvector() {
  local t0 logf work mirror
  t0=$(date +%s)
  logf=$(mktemp "${TMPDIR:-/tmp}/pgvector-install.XXXXXX.log")
  log "pgvector $PGVECTOR_VERSION not installed for PostgreSQL $PG_MAJOR: building it (log: $logf)"
  export DEBIAN_FRONTEND=noninteractive
  if ! grep -rqs '^deb-src .* trixie main' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || die "cannot find the Debian mirror (no URIs in /etc/apt/sources.list.d/debian.sources)"
    echo "deb-src $mirror trixie main" | as_root tee /etc/apt/sources.list.d/trixie-src.list >/dev/null
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/pgvector-build.XXXXXX")
  local rc
  # Not `if ! ( ... )`: bash ignores `set -e` inside a tested subshell.
  set +e
  (
    set -e
    # apt-get update: one retry for a transient mirror hiccup.
    as_root apt-get update -qq || { sleep 5; as_root apt-get update -qq; }
    as_root apt-get install -y -qq \
      "postgresql-server-dev-$PG_MAJOR" build-essential dpkg-dev
    cd "$work"
    apt-get source -qq "pgvector=$PGVECTOR_DEB_VERSION"
    cd "pgvector-$PGVECTOR_VERSION"
    make PG_CONFIG="$PG_CONFIG" -j"$(nproc)"
    as_root make PG_CONFIG="$PG_CONFIG" install
  ) >"$logf" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$logf" >&2 || true
    rm -rf "$work"
    die "pgvector $PGVECTOR_VERSION install failed (full log: $logf)"
  fi
  rm -rf "$work"
  grep -qs "default_version = '$PGVECTOR_VERSION'" "$CONTROL" ||
    die "pgvector build finished but $CONTROL does not say version $PGVECTOR_VERSION (log: $logf)"
  rm -f "$logf"
  log "pgvector $PGVECTOR_VERSION installed in $(( $(date +%s) - t0 ))s"
}

if ! grep -qs "default_version = '$PGVECTOR_VERSION'" "$CONTROL"; then
  install_pgvector
fi

# ---------------------------------------------------------------- PostgreSQL
pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; }
if ! pg_up; then
  need pg_ctlcluster "PostgreSQL server (package postgresql-common / postgresql-$PG_MAJOR) is missing"
  log "PostgreSQL not answering on $PG_HOST:$PG_PORT: starting cluster $PG_MAJOR/main"
  as_root pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start ||
    log "pg_ctlcluster start returned non-zero (it may already be starting); waiting"
  for _ in $(seq 1 "$WAIT_SECS"); do pg_up && break; sleep 1; done
  pg_up || die "PostgreSQL did not accept connections on $PG_HOST:$PG_PORT within ${WAIT_SECS}s (see /var/log/postgresql/)"
fi

# ---------------------------------------------------------------- Redis
redis_up() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
if ! redis_up; then
  need redis-server "Redis server (package redis-server) is missing"
  log "Redis not answering on $REDIS_HOST:$REDIS_PORT: starting redis-server"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log ||
    log "redis-server returned non-zero; waiting"
  for _ in $(seq 1 "$WAIT_SECS"); do redis_up && break; sleep 1; done
  redis_up || die "Redis did not answer PING on $REDIS_HOST:$REDIS_PORT within ${WAIT_SECS}s (see /var/log/redis/ci.log)"
fi

# ---------------------------------------------------------------- database + extension
psql_pg() { as_postgres psql -X -q -v ON_ERROR_STOP=1 "$@"; }

if [ "$(psql_pg -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
  log "database '$PG_DB' missing: creating it"
  psql_pg -d postgres -c "CREATE DATABASE $PG_DB" || die "cannot create database '$PG_DB'"
fi

# CREATE EXTENSION needs a superuser (vector is not a trusted extension), hence postgres.
psql_pg -d "$PG_DB" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION IF NOT EXISTS vector' >/dev/null ||
  die "CREATE EXTENSION vector failed in database '$PG_DB'"
have=$(psql_pg -d "$PG_DB" -tAc "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
if [ "$have" != "$PGVECTOR_VERSION" ]; then
  psql_pg -d "$PG_DB" -c "ALTER EXTENSION vector UPDATE TO '$PGVECTOR_VERSION'" >/dev/null ||
    die "extension vector is at '$have' in '$PG_DB' and cannot be updated to $PGVECTOR_VERSION"
fi

# ---------------------------------------------------------------- Node SDK for the e2e tests
# The official Node SDK (npm "openai") drives the proxy in the Node e2e tests
# (cmd/proxy/testdata/node); the Makefile points LLMPROXY_TEST_NODE_MODULES here.
OPENAI_NODE_VERSION=6.49.0
NODE_DIR=${LLMPROXY_NODE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/node-sdk}
need node "Node.js is missing (the Node SDK e2e tests need it)"
need npm "npm is missing (the Node SDK e2e tests need it)"
if ! grep -qs "\"version\": \"$OPENAI_NODE_VERSION\"" "$NODE_DIR/node_modules/openai/package.json"; then
  log "npm openai@$OPENAI_NODE_VERSION not in $NODE_DIR: installing"
  mkdir -p "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent "openai@$OPENAI_NODE_VERSION" >/dev/null ||
    die "npm install openai@$OPENAI_NODE_VERSION failed"
fi

log "ok: PostgreSQL $PG_MAJOR on $PG_HOST:$PG_PORT (db $PG_DB, vector $PGVECTOR_VERSION), Redis on $REDIS_HOST:$REDIS_PORT, npm openai $OPENAI_NODE_VERSION"

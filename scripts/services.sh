#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1 (ports from PGPORT / REDIS_PORT, defaults 5432 / 6379):
# installs them (and Chromium, curl and jq, for the tests) from Debian's packages when absent and starts whichever
# is not running. Safe to run again.
set -euo pipefail

PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# README.md's service walk-through (run by test/readme-walkthrough.test.ts) calls the API with curl and jq.
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
# The dashboard's end-to-end test drives Debian's Chromium (EVOP_CHROMIUM to use another).
[ -n "${EVOP_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

wait_for() { # name, command…
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: $name did not come up" >&2; return 1
}

if ! pg_isready -q -h 127.0.0.1 -p "$PGPORT"; then
  PGVER=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$PGVER main" || $SUDO pg_createcluster "$PGVER" main --port "$PGPORT" >/dev/null
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PGVER" main start || $SUDO pg_ctlcluster "$PGVER" main start
  wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p "$PGPORT"
  echo "services: PostgreSQL $PGVER started on port $PGPORT"
fi

if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >/dev/null
  wait_for Redis redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
  echo "services: Redis started on port $REDIS_PORT"
fi

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

# The role evop's tests and local stack use: password auth works whatever 127.0.0.1's auth method is
# (trust on some machines, scram on others); CREATEDB lets tests create databases of their own.
as_postgres psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'evop') THEN CREATE ROLE evop LOGIN PASSWORD 'evop' CREATEDB;
  END IF;
END $$;
SQL
as_postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'evop'" | grep -q 1 || as_postgres createdb -O evop evop

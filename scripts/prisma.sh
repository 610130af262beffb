#!/usr/bin/env bash
# Runs the Prisma CLI offline-safe: with a DATABASE_URL (generate needs one set, though it does not connect) and
# with the preload that lets the CLI exit when it is done. Usage: scripts/prisma.sh generate | migrate deploy | …
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgresql://evop:evop@127.0.0.1:5432/evop}"
exec node --require ./packages/db/prisma-preload.cjs node_modules/prisma/build/index.js "$@"

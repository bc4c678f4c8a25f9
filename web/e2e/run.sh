#!/usr/bin/env bash
# Runs the web app's unit tests (npm test: test/*.test.mjs in Node), then
# the browser test (web/e2e/e2e.mjs) against the real binary: builds
# cmd/homes, creates a scratch PostgreSQL database, starts `homes serve` on
# a free loopback port, runs the test in Debian's Chromium, then stops the
# server and drops the database.
#
# Needs: go, node with web/node_modules installed (npm ci), Chromium at
# $CHROMIUM (default /usr/bin/chromium), and PostgreSQL reachable as
# $E2E_PG_URL (default postgres://postgres@127.0.0.1:5432, trust auth) with
# psql. Screenshots and the server log go to $ARTIFACTS (default
# web/e2e/artifacts, git-ignored). .ci/e2e installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

die() { echo "e2e: $*" >&2; exit 1; }

chromium=${CHROMIUM:-/usr/bin/chromium}
pg=${E2E_PG_URL:-postgres://postgres@127.0.0.1:5432}
artifacts=${ARTIFACTS:-$root/web/e2e/artifacts}

[ -x "$chromium" ] || die "no Chromium at $chromium (apt-get install -y chromium, or run .ci/e2e)"
[ -d web/node_modules/playwright-core ] || die "web/node_modules is missing (run: npm ci --prefix web)"
command -v psql >/dev/null || die "psql not found (PostgreSQL client)"
command -v node >/dev/null || die "node not found"
psql "$pg/postgres" -qtAc 'select 1' >/dev/null || die "PostgreSQL does not answer at $pg"

rm -rf "$artifacts"
mkdir -p "$artifacts"
tmp=$(mktemp -d)
db="homes_e2e_$$_$RANDOM"
pid=""
cleanup() {
  status=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  psql "$pg/postgres" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || echo "e2e: could not drop database $db" >&2
  if [ $status -ne 0 ] && [ -f "$artifacts/server.log" ]; then
    echo "e2e: last lines of the server log ($artifacts/server.log):" >&2
    tail -n 30 "$artifacts/server.log" >&2
  fi
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT

echo "e2e: unit tests (npm test)"
(cd web && npm test --silent)

echo "e2e: building cmd/homes"
go build -o "$tmp/homes" ./cmd/homes

psql "$pg/postgres" -qc "create database $db" >/dev/null
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
base="http://127.0.0.1:$port"

echo "e2e: starting homes serve on $base, database $db"
HOMES_ADDR="127.0.0.1:$port" \
  DATABASE_URL="$pg/$db?sslmode=disable" \
  HOMES_DATA_DIR="$tmp/data" \
  HOMES_MOCK_MAX_LATENCY=10ms \
  "$tmp/homes" serve >"$artifacts/server.log" 2>&1 &
pid=$!

for _ in $(seq 1 60); do
  kill -0 "$pid" 2>/dev/null || die "the server exited at start"
  if curl -fs -o /dev/null "$base/" 2>/dev/null; then break; fi
  sleep 0.5
done
curl -fsS -o /dev/null "$base/" || die "the server does not serve / at $base"

echo "e2e: running web/e2e/e2e.mjs in $chromium"
(cd web && BASE_URL="$base" ARTIFACTS="$artifacts" CHROMIUM="$chromium" node e2e/e2e.mjs)

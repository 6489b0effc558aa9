#!/usr/bin/env bash
# Starts a private PostgreSQL cluster on 127.0.0.1:${HOTLINE_TEST_PG_PORT:-55432}
# for the tests (data under ${TMPDIR:-/tmp}/hotline-pg), unless one runs there already.
set -euo pipefail
port=${HOTLINE_TEST_PG_PORT:-55432}
dir=${HOTLINE_TEST_PG_DIR:-${TMPDIR:-/tmp}/hotline-pg}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ]; then
  echo "PostgreSQL is not installed; PostgreSQL tests will skip (they fail under CI=true)" >&2
  exit 0
fi
run_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if run_as "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then exit 0; fi
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
if [ ! -f "$dir/PG_VERSION" ]; then
  run_as "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
fi
run_as "$bindir/pg_ctl" -D "$dir" -l "$dir/log" -w -o "-h 127.0.0.1 -p $port -k /tmp -c fsync=off -c max_connections=200" start >/dev/null
echo "PostgreSQL on 127.0.0.1:$port"

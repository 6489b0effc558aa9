#!/usr/bin/env bash
# Installs and starts what the integration tests need. As root it installs
# missing Debian packages; otherwise it says what is missing. Idempotent.
set -euo pipefail
need=()
command -v sipp >/dev/null || need+=(sip-tester)
[ -x "$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/initdb" ] 2>/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing packages (install as root): ${need[*]}" >&2
    [ "${CI:-}" = true ] && exit 1
  fi
fi
bash "$(dirname "$0")/pg-start.sh"

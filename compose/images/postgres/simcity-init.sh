#!/bin/bash
# SimCity's database initialisation, run once on an empty data directory from
# /docker-entrypoint-initdb.d/ by the official postgres image and by simcity/postgres alike:
# applies compose/db/*.sql (mounted or baked at /simcity/db) in name order, then gives the
# `authenticator` role (PostgREST's login) the password in AUTHENTICATOR_PASSWORD.
set -euo pipefail
export LC_ALL=C
dir="${SIMCITY_DB_DIR:-/simcity/db}"
psql_=(psql -v ON_ERROR_STOP=1 -q --no-psqlrc
       --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}")
shopt -s nullglob
files=("$dir"/*.sql)
[ ${#files[@]} -gt 0 ] || { echo "simcity-init: no SQL files in $dir" >&2; exit 1; }
for f in "${files[@]}"; do
  echo "simcity-init: applying $f"
  "${psql_[@]}" -f "$f"
done
if [ -n "${AUTHENTICATOR_PASSWORD:-}" ]; then
  # Through stdin so that psql quotes the value (:'pw'); -c would not interpolate it.
  "${psql_[@]}" -v pw="$AUTHENTICATOR_PASSWORD" <<'SQL'
ALTER ROLE authenticator PASSWORD :'pw';
SQL
  echo "simcity-init: authenticator password set"
else
  echo "simcity-init: AUTHENTICATOR_PASSWORD is empty: authenticator cannot log in" >&2
fi

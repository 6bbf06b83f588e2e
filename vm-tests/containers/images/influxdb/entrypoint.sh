#!/bin/sh
# First start (no metadata yet): run influxd on loopback only, create the admin, the database
# and its user, apply the init scripts, stop it; then run it for real.
set -eu
[ "${1:-influxd}" = influxd ] || exec "$@"
config=/etc/influxdb/influxdb.conf
if [ ! -d /var/lib/influxdb/meta ]; then
  INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:8086 influxd -config "$config" &
  pid=$!
  i=0
  until wget -q -O /dev/null http://127.0.0.1:8086/ping 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || { echo "influxd did not start" >&2; exit 1; }
    sleep 1
  done
  query() {
    wget -q -O /dev/null --post-data "q=$1" "http://127.0.0.1:8086/query?u=${INFLUXDB_ADMIN_USER:-}&p=${INFLUXDB_ADMIN_PASSWORD:-}"
  }
  if [ -n "${INFLUXDB_ADMIN_USER:-}" ]; then
    query "CREATE USER \"$INFLUXDB_ADMIN_USER\" WITH PASSWORD '$INFLUXDB_ADMIN_PASSWORD' WITH ALL PRIVILEGES"
  fi
  if [ -n "${INFLUXDB_DB:-}" ]; then
    query "CREATE DATABASE \"$INFLUXDB_DB\""
  fi
  if [ -n "${INFLUXDB_USER:-}" ]; then
    query "CREATE USER \"$INFLUXDB_USER\" WITH PASSWORD '$INFLUXDB_USER_PASSWORD'"
    [ -z "${INFLUXDB_DB:-}" ] || query "GRANT ALL ON \"$INFLUXDB_DB\" TO \"$INFLUXDB_USER\""
  fi
  for f in /docker-entrypoint-initdb.d/*.iql; do
    [ -f "$f" ] || continue
    # One statement per request: the HTTP API answers a list with the first error only.
    tr ';' '\n' <"$f" | while IFS= read -r statement; do
      [ -z "$statement" ] || query "$statement"
    done
  done
  kill "$pid"
  wait "$pid" || true
fi
exec influxd -config "$config"

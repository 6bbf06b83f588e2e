#!/bin/sh
# Wait (at most TIMEOUT seconds) until every service of STACK runs its desired replicas.
# On time-out, print each failing task's state and error, and exit 1.
set -eu
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  pending=$(docker stack services "$STACK" --format '{{.Name}} {{.Replicas}}' |
    awk '{split($2, r, "/"); sub(/ .*/, "", r[2]); if (r[1] != r[2]) print $1 " " $2}')
  if [ -z "$pending" ]; then
    echo "ready"
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "not ready after ${TIMEOUT}s:" >&2
    printf '%s\n' "$pending" | sed 's/^/  service /' >&2
    docker stack ps "$STACK" --no-trunc --format '  task {{.Name}} on {{.Node}}: {{.CurrentState}} {{.Error}}' |
      grep -v 'Running' | head -n 20 >&2 || true
    exit 1
  fi
  sleep 1
done

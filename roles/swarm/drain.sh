#!/bin/sh
# Drain NODE and wait (at most TIMEOUT seconds) until none of its tasks still runs there.
# Run on a manager.
set -eu
node_change docker node update --availability drain "$NODE"
deadline=$(( $(date +%s) + TIMEOUT ))
while [ -n "$(docker node ps "$NODE" --filter desired-state=running -q)" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "tasks still running on $NODE after ${TIMEOUT}s:" >&2
    docker node ps "$NODE" --filter desired-state=running --format '  {{.Name}} {{.CurrentState}}' >&2
    exit 1
  fi
  sleep 1
done
echo "changed: drained $NODE"

#!/bin/sh
# Remove STACK from the swarm and forget clusterup's record of it; wait (at most TIMEOUT
# seconds) until its services are gone, so the networks and secrets they used are free.
set -eu
docker stack rm "$STACK" >/dev/null
deadline=$(( $(date +%s) + TIMEOUT ))
while [ -n "$(docker stack services -q "$STACK" 2>/dev/null)" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "stack $STACK: its services were still there ${TIMEOUT}s after removal" >&2
    exit 1
  fi
  sleep 1
done
docker config rm "clusterup-stack-$STACK" >/dev/null 2>&1 || true
echo "changed: removed stack $STACK"

#!/bin/sh
# Wait (at most TIMEOUT seconds) until this node has taken its new role: it answers as a
# manager or a worker (WANT), and it renewed its certificate since STAMP (cert-stamp.sh).
# A promotion issued before a demotion has settled leaves the node stuck.
set -eu
want_control=false
if [ "$WANT" = manager ]; then want_control=true; fi
deadline=$(( $(date +%s) + TIMEOUT ))
cert=/var/lib/docker/swarm/certificates/swarm-node.crt
until [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = "$want_control" ] &&
  [ "$(stat -c %Y "$cert" 2>/dev/null || echo 0)" != "$STAMP" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "this node did not become a $WANT within ${TIMEOUT}s" >&2
    exit 1
  fi
  sleep 1
done

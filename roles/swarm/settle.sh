#!/bin/sh
# Wait (at most TIMEOUT seconds) until this node has taken its new role: it answers as a
# manager or a worker (WANT), and it renewed its certificate since STAMP (cert-stamp.sh: its
# fingerprint).
# A promotion issued before a demotion has settled leaves the node stuck.
set -eu
want_control=false
if [ "$WANT" = manager ]; then want_control=true; fi
deadline=$(( $(date +%s) + TIMEOUT ))
cert=/var/lib/docker/swarm/certificates/swarm-node.crt
until [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = "$want_control" ] &&
  [ "$(sha256sum "$cert" 2>/dev/null | cut -d' ' -f1 || echo none)" != "$STAMP" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "this node did not become a $WANT within ${TIMEOUT}s" >&2
    exit 1
  fi
  sleep 1
done

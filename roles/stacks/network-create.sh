#!/bin/sh
# Create an attachable overlay network. Refuses (exit 3) when the name is taken, unless
# RECREATE=yes: then the existing one (which no service used when observed) is removed first;
# the swarm refuses that if a service has started using it since.
set -eu
done_what=created
if docker network inspect "$NAME" >/dev/null 2>&1; then
  if [ "$RECREATE" != yes ]; then
    echo "network $NAME exists already" >&2
    exit 3
  fi
  docker network rm "$NAME" >/dev/null
  done_what="removed and created again"
fi
set -- --driver overlay --attachable --opt "com.docker.network.driver.mtu=$MTU"
if [ "$ENCRYPTED" = yes ]; then set -- "$@" --opt encrypted; fi
docker network create "$@" "$NAME" >/dev/null
echo "changed: $done_what network $NAME"

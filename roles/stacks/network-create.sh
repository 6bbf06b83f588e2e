#!/bin/sh
# Create an attachable overlay network. Refuses (exit 3) when the name is taken.
set -eu
if docker network inspect "$NAME" >/dev/null 2>&1; then
  echo "network $NAME exists already" >&2
  exit 3
fi
set -- --driver overlay --attachable --opt "com.docker.network.driver.mtu=$MTU"
if [ "$ENCRYPTED" = yes ]; then set -- "$@" --opt encrypted; fi
docker network create "$@" "$NAME" >/dev/null
echo "changed: created network $NAME"

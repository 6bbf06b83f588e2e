#!/bin/sh
# Create a new swarm with this host as its first manager; prints `node_id=...`.
# Refuses (exit 3) when the host already belongs to a swarm.
set -eu
state=$(local_state)
if [ "$state" != inactive ]; then
  echo "this host's swarm state is '$state', not 'inactive': refusing to create a new swarm" >&2
  exit 3
fi
docker swarm init --advertise-addr "$ADVERTISE_ADDR" >/dev/null
echo "node_id=$(node_id)"

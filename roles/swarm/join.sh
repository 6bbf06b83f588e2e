#!/bin/sh
# Join the swarm whose manager listens at MANAGER_ADDR; prints `node_id=...`.
# Refuses (exit 3) when the host already belongs to a swarm: never silently re-joined.
set -eu
state=$(local_state)
if [ "$state" != inactive ]; then
  echo "this host's swarm state is '$state', not 'inactive': refusing to join" >&2
  exit 3
fi
docker swarm join --token "$JOIN_TOKEN" --advertise-addr "$ADVERTISE_ADDR" "$MANAGER_ADDR" >/dev/null
echo "node_id=$(node_id)"

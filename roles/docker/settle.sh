#!/bin/sh
# After apply.sh restarted the engine: wait, at most TIMEOUT seconds, until it answers again
# and, for a swarm node (IN_SWARM=yes), until the node is back in the swarm; on a manager,
# until the swarm answers through it (its raft has a leader: a majority of managers is up).
# clusterup restarts the next host only after this succeeded.
set -eu
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null || true)
  case "$IN_SWARM:$state" in
    no:?*) exit 0 ;;
    "yes:active false") exit 0 ;;
    "yes:active true") if docker node ls -q >/dev/null 2>&1; then exit 0; fi ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "the engine was restarted but is not back after ${TIMEOUT}s (swarm state: ${state:-no answer}); not restarting other hosts" >&2
    exit 1
  fi
  sleep 0.5
done

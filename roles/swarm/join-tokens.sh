#!/bin/sh
# Print the swarm's join tokens (secrets: clusterup never logs this output).
set -eu
echo "worker=$(docker swarm join-token -q worker)"
echo "manager=$(docker swarm join-token -q manager)"

#!/bin/sh
# Leave the swarm (this host was demoted to a worker and drained first).
set -eu
if [ "$(local_state)" = inactive ]; then exit 0; fi
docker swarm leave >/dev/null
echo "changed: left the swarm"

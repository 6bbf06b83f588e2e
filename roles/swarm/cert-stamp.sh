#!/bin/sh
# The modification time of this node's swarm certificate: a role change is complete once the
# node has renewed it (see settle.sh). Read-only.
set -eu
stat -c %Y /var/lib/docker/swarm/certificates/swarm-node.crt 2>/dev/null || echo 0

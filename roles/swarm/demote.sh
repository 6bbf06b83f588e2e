#!/bin/sh
# Make NODE a worker. Run on a manager; clusterup checked the quorum first.
set -eu
docker node demote "$NODE" >/dev/null
echo "changed: demoted $NODE"

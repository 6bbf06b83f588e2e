#!/bin/sh
# Make NODE a worker. Run on a manager; clusterup checked the quorum first.
set -eu
node_change docker node demote "$NODE"
echo "changed: demoted $NODE"

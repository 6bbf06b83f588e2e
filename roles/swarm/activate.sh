#!/bin/sh
# Make NODE take tasks again (after a drain for an engine restart). Run on a manager.
set -eu
node_change docker node update --availability active "$NODE"
echo "changed: activated $NODE"

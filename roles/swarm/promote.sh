#!/bin/sh
# Make NODE a manager. Run on a manager.
set -eu
node_change docker node promote "$NODE"
echo "changed: promoted $NODE"

#!/bin/sh
# Make NODE a manager. Run on a manager.
set -eu
docker node promote "$NODE" >/dev/null
echo "changed: promoted $NODE"

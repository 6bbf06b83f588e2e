#!/bin/sh
# Create a swarm secret from VALUE (given on stdin with the script, never on a command line).
set -eu
if docker secret inspect "$SECRET_NAME" >/dev/null 2>&1; then exit 0; fi
printf '%s' "$VALUE" | docker secret create --label "clusterup.secret=$NAME" "$SECRET_NAME" - >/dev/null
echo "changed: created secret $SECRET_NAME"

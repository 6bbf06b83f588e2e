#!/bin/sh
# Keep the cluster's secret-naming key (KEY, hex) in the swarm config clusterup-secret-key.
# Created once; refuses (exit 3) to replace an existing one, which would rename every secret.
set -eu
if docker config inspect clusterup-secret-key >/dev/null 2>&1; then
  echo "the swarm already has a secret-naming key" >&2
  exit 3
fi
printenv KEY | docker config create --label clusterup.secret-key=1 clusterup-secret-key - >/dev/null
echo "changed: created the secret-naming key clusterup-secret-key"

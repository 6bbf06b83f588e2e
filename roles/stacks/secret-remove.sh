#!/bin/sh
# Remove old versions of inventory secrets that no service uses any more (NAMES: one per
# line). The swarm refuses to remove a secret in use, so a service that started using one
# since it was observed keeps it.
set -eu
printf '%s\n' "$NAMES" | while read -r name; do
  [ -n "$name" ] || continue
  docker secret rm "$name" >/dev/null
  echo "changed: removed unused secret $name"
done

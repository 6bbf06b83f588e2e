#!/bin/sh
# Print each image of IMAGES (one per line) that this node does not have. Read-only.
set -eu
printf '%s\n' "$IMAGES" | while read -r image; do
  [ -n "$image" ] || continue
  docker image inspect "$image" >/dev/null 2>&1 || echo "$image"
done

#!/bin/sh
# Apply node labels; LABEL_UPDATES holds one "NODE_ID key=value" per line. Run on a manager.
set -eu
printf '%s\n' "$LABEL_UPDATES" | while read -r node label; do
  [ -n "$node" ] || continue
  docker node update --label-add "$label" "$node" >/dev/null
  echo "changed: label $label on $node"
done

#!/bin/sh
# Apply node labels; LABEL_UPDATES holds one "NODE_ID key=value" (set) or "NODE_ID -key"
# (remove) per line. Run on a manager.
set -eu
printf '%s\n' "$LABEL_UPDATES" | while read -r node label; do
  [ -n "$node" ] || continue
  case $label in
    -*) node_change docker node update --label-rm "${label#-}" "$node" ;;
    *) node_change docker node update --label-add "$label" "$node" ;;
  esac
  echo "changed: label $label on $node"
done

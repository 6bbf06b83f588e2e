#!/bin/sh
# Add the missing ufw rules. One `changed:` line per rule.
set -eu
ufw_active || exit 0
missing_rules | while read -r port from; do
  if [ "$from" = any ]; then
    ufw allow "$port" comment clusterup >/dev/null
  else
    ufw allow from "$from" to any port "${port%/*}" proto "${port#*/}" comment clusterup >/dev/null
  fi
  echo "changed: ufw allows $port from $from"
done

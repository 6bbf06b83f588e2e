#!/bin/sh
# Docker fixes a volume's options when it is first created on a node. For each "NAME O DEVICE"
# line of VOLUMES that exists here with other options, print `drift NAME: ...`; with
# RECREATE=yes remove it when no container uses it (the next deploy creates it anew), or
# print `busy NAME` when one does.
set -eu
printf '%s\n' "$VOLUMES" | while read -r name o device; do
  [ -n "$name" ] || continue
  docker volume inspect "$name" >/dev/null 2>&1 || continue
  have_o=$(docker volume inspect --format '{{index .Options "o"}}' "$name")
  have_device=$(docker volume inspect --format '{{index .Options "device"}}' "$name")
  [ "$have_o" = "$o" ] && [ "$have_device" = "$device" ] && continue
  echo "drift $name: has o=$have_o device=$have_device"
  [ "$RECREATE" = yes ] || continue
  if [ -n "$(docker ps -aq --filter "volume=$name")" ]; then
    echo "busy $name"
  else
    docker volume rm "$name" >/dev/null
    echo "changed: removed volume $name (it had other options)"
  fi
done
